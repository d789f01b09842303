# Sourced by e2e scripts that open an SVG in a real browser: Debian's
# chromium, headless (in DEB_PKGS).  Needs common.bash first ($T, $TO).
#
# browse NAME FILE [FRAGMENT]  opens file://FILE#FRAGMENT, waits for the load
#     and its scripts, and leaves the serialized DOM in $T/NAME.dom, the
#     browser's log in $T/NAME.log and the seconds it took in $T/NAME.secs.
# console_errors NAME  how many page messages the browser logged: console
#     output of any level, uncaught exceptions, and the XML parse-error page
#     (a broken SVG still "loads", as an error page).  The SVGs under test
#     log nothing, so the answer must be 0.
# svg_attr NAME ATTR   the value of ATTR on the DOM's root <svg> element.

CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || echo /usr/bin/chromium)}

browse() {
    local n=$1 file=$2 frag=${3:-} t0 t1
    local args=(--headless --disable-gpu --no-first-run --no-default-browser-check
                --disable-extensions --disable-background-networking
                --user-data-dir="$T/chromium-profile" --enable-logging=stderr --v=0)
    # Chromium's sandbox refuses to start as root.
    [ "$(id -u)" -eq 0 ] && args+=(--no-sandbox)
    t0=$(date +%s.%N)
    HOME=$T timeout -k 5 "$TO" "$CHROMIUM" "${args[@]}" --dump-dom \
        "file://$file${frag:+#$frag}" >"$T/$n.dom" 2>"$T/$n.log" </dev/null
    echo $? >"$T/$n.rc"
    t1=$(date +%s.%N)
    echo "$t0 $t1" | awk '{printf "%.2f\n", $2 - $1}' >"$T/$n.secs"
}

# screenshot NAME FILE FRAGMENT WIDTHxHEIGHT : $T/NAME.png
screenshot() {
    local n=$1 file=$2 frag=$3 size=$4
    local args=(--headless --disable-gpu --no-first-run --hide-scrollbars
                --user-data-dir="$T/chromium-profile" --window-size="${size/x/,}")
    [ "$(id -u)" -eq 0 ] && args+=(--no-sandbox)
    HOME=$T timeout -k 5 "$TO" "$CHROMIUM" "${args[@]}" --screenshot="$T/$n.png" \
        "file://$file${frag:+#$frag}" >/dev/null 2>"$T/$n.shot.log" </dev/null
}

console_errors() {
    local c p
    c=$(grep -cE 'CONSOLE|Uncaught' "$T/$1.log")
    p=$(grep -c 'This page contains the following errors' "$T/$1.dom")
    echo $((c + p))
}

svg_attr() {
    "$PY" - "$T/$1.dom" "$2" <<'EOF'
import re, sys
dom = open(sys.argv[1], encoding="utf-8", errors="replace").read()
m = re.search(r"<svg\b[^>]*>", dom)
a = re.search(r'\s%s="([^"]*)"' % re.escape(sys.argv[2]), m.group(0)) if m else None
print(a.group(1) if a else "(none)")
EOF
}
