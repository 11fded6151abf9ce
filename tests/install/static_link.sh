#!/bin/sh
# static_link.sh - install weft into a temporary prefix and use it as a user
# would: weft.pc must name that prefix (not the one the build was configured
# with), and examples/echo, which uses I/O (so liburing when weft was built
# with it), must link statically with `pkg-config --static --libs weft`
# and run.
#
#   static_link.sh CMAKE BUILD_DIR SOURCE_DIR CC PKG_CONFIG
set -eu
cmake=$1 build=$2 src=$3 cc=$4 pkgconfig=$5

tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-install-XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "static_link: $*" >&2
	exit 1
}

prefix=$tmp/prefix
"$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "install failed"; }
pc=$(find "$prefix" -name weft.pc)
[ -n "$pc" ] || fail "no weft.pc installed under $prefix"
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH

got=$("$pkgconfig" --variable=prefix weft)
[ "$got" = "$prefix" ] || fail "weft.pc names prefix '$got', installed under '$prefix'"

# Only the installed library: the static archive, as a static link uses.
flags="$("$pkgconfig" --cflags weft) -static $("$pkgconfig" --static --libs weft)"
echo "cc examples/echo/echo.c $flags"
# shellcheck disable=SC2086 # word splitting of the pkg-config flags is meant
"$cc" -o "$tmp/echo" "$src/examples/echo/echo.c" $flags 2>"$tmp/link.log" || {
	cat "$tmp/link.log"
	fail "static link failed"
}

# It runs: listens, and stops on SIGTERM with status 0.
"$tmp/echo" 0 >"$tmp/echo.out" 2>&1 &
pid=$!
i=0
until grep -q listening "$tmp/echo.out"; do
	i=$((i + 1))
	[ $i -le 200 ] || { cat "$tmp/echo.out"; fail "echo did not start"; }
	sleep 0.05
done
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
[ "$status" -eq 0 ] || { cat "$tmp/echo.out"; fail "echo exited with $status"; }
echo "static_link: ok ($(sed -n 1p "$tmp/echo.out"))"
