#!/usr/bin/env bash
# demo.sh — `make demo`: record the bundled demo app (tools/demo/demo.c) with
# `perfagent run` and print its leak report.  The demo leaks 100000 bytes at
# cache_store and 12800 bytes at log_slow_request; everything else is freed.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}
OUT=out/demo

# From make, `all` is already built; run directly, build what is missing.
if [ ! -x "$B/perfagent" ] || [ ! -f "$B/libperfagent.so" ]; then
    make deps
    make all
fi
if [ ! -x "$B/demo" ] || [ tools/demo/demo.c -nt "$B/demo" ]; then
    cc -O2 -g -fno-omit-frame-pointer -o "$B/demo" tools/demo/demo.c
fi

"$B/perfagent" run -o "$OUT" --malloc-rate 1 -- "$B/demo"

# index.json has one process per line; the demo's is the one whose exe is it.
dir=$(sed -n 's|.*"exe":"[^"]*/demo".*"dir":"\([^"]*\)".*|\1|p' "$OUT/index.json" | tail -n 1)
if [ -z "$dir" ] || [ ! -s "$OUT/$dir/leaks.txt" ]; then
    echo "demo: no leak report for the demo in $OUT (see $OUT/index.json)" >&2
    exit 1
fi
echo
echo "==> $OUT/$dir/leaks.txt"
cat "$OUT/$dir/leaks.txt"
for fn in cache_store log_slow_request; do
    grep -q "$fn" "$OUT/$dir/leaks.txt" || echo "demo: warning: $fn not in the report" >&2
done
