#!/bin/sh
# expect.sh WEFT PROG.wf - run PROG.wf with `weft run` (the arguments in
# PROG.args, one per line, if present) and compare: stdout with PROG.out,
# stderr with PROG.err (if present), the exit status with PROG.status (0
# if absent). Prints the differences and exits 1 on a mismatch. With
# PROG.stack, the program runs with that C stack limit (ulimit -s, KiB).
weft=$1
prog=$2
case $prog in /*) ;; *) prog=$PWD/$prog ;; esac # used after a cd
base=${prog%.wf}
dir=$(dirname "$prog")
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
[ -f "$base.stack" ] && ulimit -s "$(cat "$base.stack")"
set --
if [ -f "$base.args" ]; then
	while IFS= read -r a; do set -- "$@" "$a"; done < "$base.args"
fi
if [ -f "$base.in" ]; then
	(cd "$dir" && "$weft" run "$(basename "$prog")" "$@" <"$base.in" >"$out" 2>"$err")
else
	(cd "$dir" && "$weft" run "$(basename "$prog")" "$@" </dev/null >"$out" 2>"$err")
fi
status=$?
want=0
[ -f "$base.status" ] && want=$(cat "$base.status")
fail=0
if ! diff -u "$base.out" "$out"; then
	echo "FAIL: stdout differs from $base.out"
	fail=1
fi
if [ -f "$base.err" ]; then
	if ! diff -u "$base.err" "$err"; then
		echo "FAIL: stderr differs from $base.err"
		fail=1
	fi
elif [ -s "$err" ]; then
	echo "unexpected stderr:"
	cat "$err"
	fail=1
fi
if [ "$status" != "$want" ]; then
	echo "FAIL: exit status $status, expected $want"
	fail=1
fi
exit $fail
