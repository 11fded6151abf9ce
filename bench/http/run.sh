#!/usr/bin/env bash
# bench/http/run.sh - wrk against examples/http and Go's net/http hello world,
# interleaved, on this machine's cores (default settings for both servers).
#   bench/http/run.sh [ROUNDS=3] [CONNS=100] [SECS=5]
# Needs wrk and go (apt-get install wrk golang-go); prints one line per run
# and the median requests/s and p99 latency of each server.
set -euo pipefail
cd "$(dirname "$0")"
ROUNDS=${1:-3} CONNS=${2:-100} SECS=${3:-5}
REPO=$(cd ../.. && pwd)
WEFT=$REPO/build/release/example_http
[ -x "$WEFT" ] || { echo "build first: make build" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing (apt-get install wrk)" >&2; exit 1; }
BIN=$(mktemp -d)
trap 'rm -rf "$BIN"' EXIT
( export GOCACHE=${GOCACHE:-$BIN/gocache} GO111MODULE=off; go build -o "$BIN/hello" hello.go )

run() { # name port cmd...
	local name=$1 port=$2; shift 2
	"$@" "$port" >/dev/null 2>&1 &
	local pid=$!
	for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
	local out
	out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "http://127.0.0.1:$port/")
	kill "$pid"; wait "$pid" 2>/dev/null || true
	local rps p99
	rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	echo "$name requests/s=$rps p99=$p99"
}

for r in $(seq "$ROUNDS"); do
	run weft 18080 "$WEFT"
	run go 18081 "$BIN/hello"
done | tee "$BIN/log"
for n in weft go; do
	awk -v n="$n" '$1 == n {split($2, a, "="); print a[2]}' "$BIN/log" | sort -n |
		awk -v n="$n" '{v[NR]=$1} END {printf "%s median requests/s: %s\n", n, v[int((NR+1)/2)]}'
done
