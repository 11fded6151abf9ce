#!/usr/bin/env bash
# Build the peer benchmark programs (Go, Rust/Tokio, Erlang, Boost.Fiber, the
# echo load generator) into bench/peers/bin/. Idempotent: a target is rebuilt
# only when a source is newer. Missing Debian packages are installed with
# apt-get when running as root (NO_INSTALL=1 disables that); a peer whose
# toolchain cannot be had is skipped with a message, the others still build.
# The build commands are those of anchors/run_all.sh. See README.md here for
# what the programs measure, ../README.md for how bench/compare runs them.
#
#   CARGO=/usr/bin/cargo   cargo to use (default: `cargo` on PATH, then /usr/bin/cargo)
#   NO_INSTALL=1           never call apt-get
#   QUIET=1                print only problems and the final status line
#
# Exit status 0 even when peers are skipped (bench/compare runs what exists);
# bin/status lists the peers that are available.
set -uo pipefail
cd "$(dirname "$(readlink -f "$0")")" || exit 1
ROOT=$PWD
BIN=$ROOT/bin
mkdir -p "$BIN" "$ROOT/.cache"

say() { [ -n "${QUIET:-}" ] || echo "build.sh: $*"; }
warn() { echo "build.sh: $*" >&2; }

# --------------------------------------------------------------- dependencies
# Debian's cargo is installed only if no cargo at all is found (rustup's works).
find_cargo() {
    if [ -n "${CARGO:-}" ]; then command -v "$CARGO" && return 0; return 1; fi
    command -v cargo && return 0
    [ -x /usr/bin/cargo ] && echo /usr/bin/cargo && return 0
    return 1
}
need_pkgs=()
command -v go >/dev/null         || need_pkgs+=(golang-go)
command -v erl >/dev/null        || need_pkgs+=(erlang-nox)
command -v lua5.4 >/dev/null     || need_pkgs+=(lua5.4)
command -v luajit >/dev/null     || need_pkgs+=(luajit)
command -v g++ >/dev/null        || need_pkgs+=(g++)
command -v gcc >/dev/null        || need_pkgs+=(gcc)
command -v python3 >/dev/null    || need_pkgs+=(python3)
[ -x /usr/bin/time ]             || need_pkgs+=(time)
find_cargo >/dev/null            || need_pkgs+=(cargo)
[ -d /usr/share/cargo/registry/tokio-1.24.2 ] || need_pkgs+=(librust-tokio-dev)
[ -f /usr/include/boost/fiber/all.hpp ]       || need_pkgs+=(libboost-fiber-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    if [ -n "${NO_INSTALL:-}" ] || [ "$(id -u)" != 0 ]; then
        warn "missing Debian packages: ${need_pkgs[*]} (not root or NO_INSTALL set: not installing;"
        warn "  as root: apt-get install ${need_pkgs[*]}); the peers needing them are skipped"
    else
        say "installing: ${need_pkgs[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq || warn "apt-get update failed"
        if ! apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}"; then
            # one unavailable package must not keep the others out
            for p in "${need_pkgs[@]}"; do
                apt-get install -y -qq --no-install-recommends "$p" || warn "could not install $p"
            done
        fi
    fi
fi

# ---------------------------------------------------------------------- build
newer() { # newer TARGET SRC... : true if TARGET is missing or older than any SRC
    local t=$1; shift
    [ -e "$t" ] || return 0
    for s; do [ "$s" -nt "$t" ] && return 0; done
    return 1
}
built=() skipped=()
ok()   { built+=("$1"); }
skip() { skipped+=("$1"); warn "SKIP $1: $2"; }
changed=
building() { changed=1; say "$*"; }

# go -> bin/go_bench
if ! command -v go >/dev/null; then
    skip go "no go toolchain (Debian package golang-go)"
elif newer "$BIN/go_bench" go/main.go go/go.mod; then
    building "go: building bin/go_bench"
    if (cd go && GOCACHE=$ROOT/.cache/go-build GOPATH=$ROOT/.cache/gopath GOFLAGS= \
            go build -buildvcs=false -o "$BIN/go_bench" .); then
        ok go
    else
        rm -f "$BIN/go_bench"; skip go "go build failed"
    fi
else ok go; fi

# rust/tokio -> bin/tokio_bench. cargo reads rust/.cargo/config.toml (offline,
# Debian crate registry) only when run from inside rust/.
CARGO_BIN=$(find_cargo || true)
if [ -z "$CARGO_BIN" ]; then
    skip tokio "no cargo (Debian package cargo)"
elif [ ! -d /usr/share/cargo/registry/tokio-1.24.2 ]; then
    skip tokio "no Debian tokio crate in /usr/share/cargo/registry (package librust-tokio-dev)"
elif newer "$BIN/tokio_bench" rust/src/*.rs rust/Cargo.toml rust/Cargo.lock rust/.cargo/config.toml; then
    building "tokio: building bin/tokio_bench with $CARGO_BIN"
    cargos=("$CARGO_BIN")
    # rustup's cargo may be first on PATH; if it fails, try Debian's as well
    [ -z "${CARGO:-}" ] && [ -x /usr/bin/cargo ] && [ "$CARGO_BIN" != /usr/bin/cargo ] && cargos+=(/usr/bin/cargo)
    done_rust=
    for c in "${cargos[@]}"; do
        if [ "$c" = /usr/bin/cargo ]; then path=/usr/bin:$PATH; else path=$PATH; fi
        if (cd rust && PATH=$path "$c" build --release --quiet && cp -p target/release/tokio_bench "$BIN/"); then
            touch "$BIN/tokio_bench"; done_rust=1; break
        fi
        warn "tokio: $c build failed"
    done
    if [ -n "$done_rust" ]; then ok tokio; else rm -f "$BIN/tokio_bench"; skip tokio "cargo build failed"; fi
else ok tokio; fi

# erlang -> bin/bench.beam (run with erl -pa bin)
if ! command -v erlc >/dev/null || ! command -v erl >/dev/null; then
    skip erlang "no erl/erlc (Debian package erlang-nox)"
elif newer "$BIN/bench.beam" erlang/bench.erl; then
    building "erlang: compiling bin/bench.beam"
    if erlc -o "$BIN" erlang/bench.erl; then ok erlang
    else rm -f "$BIN/bench.beam"; skip erlang "erlc failed"; fi
else ok erlang; fi

# boost.fiber -> bin/boost_bench (boost_fiber and boost_fiber_1t)
if ! command -v g++ >/dev/null; then
    skip boost "no g++"
elif [ ! -f /usr/include/boost/fiber/all.hpp ]; then
    skip boost "no Boost.Fiber headers (Debian package libboost-fiber-dev)"
elif newer "$BIN/boost_bench" boost/bench.cpp; then
    building "boost: building bin/boost_bench"
    if g++ -O2 -std=c++17 -o "$BIN/boost_bench" boost/bench.cpp -lboost_fiber -lboost_context -pthread; then
        ok boost
    else rm -f "$BIN/boost_bench"; skip boost "g++ failed"; fi
else ok boost; fi

# echo load generator -> bin/echo_load, and the echo floor server -> bin/echo_floor
if ! command -v gcc >/dev/null; then
    skip loadgen "no gcc"
elif newer "$BIN/echo_load" loadgen/echo_load.c || newer "$BIN/echo_floor" loadgen/echo_floor.c; then
    building "loadgen: building bin/echo_load, bin/echo_floor"
    if gcc -O2 -Wall -o "$BIN/echo_load" loadgen/echo_load.c -pthread &&
       gcc -O2 -Wall -o "$BIN/echo_floor" loadgen/echo_floor.c; then ok loadgen
    else rm -f "$BIN/echo_load" "$BIN/echo_floor"; skip loadgen "gcc failed"; fi
else ok loadgen; fi
# the io_uring floor (not a compare row; see loadgen/echo_floor_uring.c) -> bin/echo_floor_uring
if command -v gcc >/dev/null && [ -f /usr/include/liburing.h ] && newer "$BIN/echo_floor_uring" loadgen/echo_floor_uring.c; then
    building "loadgen: building bin/echo_floor_uring"
    gcc -O2 -Wall -o "$BIN/echo_floor_uring" loadgen/echo_floor_uring.c -luring || {
        rm -f "$BIN/echo_floor_uring"; warn "echo_floor_uring: gcc failed (liburing-dev too old?)"; }
fi

# lua: interpreted, nothing to build
if command -v lua5.4 >/dev/null; then ok lua5.4; else skip lua5.4 "no lua5.4 (Debian package lua5.4)"; fi
if command -v luajit >/dev/null; then ok luajit; else skip luajit "no luajit (Debian package luajit)"; fi

# ------------------------------------------------------------- versions/status
[ -n "$changed" ] || [ ! -s "$BIN/versions.txt" ] || [ "$(cat "$BIN/status" 2>/dev/null)" != "${built[*]}" ] && {
    command -v go >/dev/null && echo "go: $(go version)"
    [ -x "$BIN/tokio_bench" ] && echo "rust: $(rustc --version 2>/dev/null) / tokio $(grep -A1 '^name = "tokio"$' rust/Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')"
    command -v erl >/dev/null && echo "erlang: OTP $(erl -noshell -eval 'io:format("~s ~p~n",[erlang:system_info(otp_release), erlang:system_info(emu_flavor)]), halt().' 2>/dev/null)"
    [ -x "$BIN/boost_bench" ] && echo "boost: $(dpkg-query -W -f='${Version}' libboost-fiber-dev 2>/dev/null) / $(g++ --version | head -1)"
    [ -x "$BIN/echo_load" ] && echo "echo_load: $(gcc --version | head -1) -O2"
    command -v lua5.4 >/dev/null && echo "lua: $(lua5.4 -v 2>&1 | head -1)"
    command -v luajit >/dev/null && echo "luajit: $(luajit -v 2>&1 | head -1)"
    true
} > "$BIN/versions.txt"
echo "${built[*]}" > "$BIN/status"
echo "build.sh: peers available: ${built[*]:-none}${skipped[*]:+; skipped: ${skipped[*]}}"
exit 0
