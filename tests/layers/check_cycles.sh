#!/usr/bin/env bash
# check_cycles.sh: fails when a source file of relay/ or common/ calls (or takes the address of, or reads) a symbol of a
# file that reaches it back, directly or through others: routes call down, never back up (docs/internals.md).
#
#   tests/layers/check_cycles.sh BUILD_DIR     checks the objects of an existing build (rly_common, rly_relay, main)
#   tests/layers/check_cycles.sh --self-test   builds two files that call each other and checks that the check fails
#
# The graph is read from the object files: an edge a -> b when a.o needs a global symbol that b.o defines. tsort finds
# the cycles. Prints the edges of the graph on failure.
set -euo pipefail

# edges "a b" for the objects given (file names without directories and .c.o)
edges() {
    local defs
    defs=$(mktemp)
    for o in "$@"; do
        nm --defined-only -g "$o" | awk -v f="$(basename "$o" .c.o)" 'NF == 3 { print $3, f }'
    done | sort -u >"$defs"
    for o in "$@"; do
        nm -u "$o" | awk '{ print $NF }' | sort -u | join - "$defs" | awk -v f="$(basename "$o" .c.o)" '$2 != f { print f, $2 }'
    done | sort -u
    rm -f "$defs"
}

# 0 when the edges on stdin form no cycle; else prints the cycle tsort found and returns 1
acyclic() {
    local e out
    e=$(cat)
    if out=$( (printf '%s\n' "$e"; printf '%s\n' "$e" | tr ' ' '\n' | awk '{ print $1, $1 }') | tsort 2>&1 >/dev/null); then
        return 0
    fi
    echo "check_cycles: the call graph has a cycle (files that call each other, directly or through others):" >&2
    printf '%s\n' "$out" | sed 's/^/  /' >&2
    echo "edges (caller callee):" >&2
    printf '%s\n' "$e" | sed 's/^/  /' >&2
    return 1
}

if [ "${1:-}" = --self-test ]; then
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
    printf 'int b(int);\nint a(int x) { return x ? b(x - 1) : 0; }\n' >"$dir/up.c"
    printf 'int a(int);\nint b(int x) { return a(x); }\n' >"$dir/down.c"
    printf 'int c(int x) { return x; }\n' >"$dir/leaf.c"
    for f in up down leaf; do cc -c "$dir/$f.c" -o "$dir/$f.c.o"; done
    if ! edges "$dir/up.c.o" "$dir/leaf.c.o" | acyclic 2>/dev/null; then
        echo "check_cycles: self-test failed: an acyclic graph was reported as a cycle" >&2
        exit 1
    fi
    if edges "$dir/up.c.o" "$dir/down.c.o" "$dir/leaf.c.o" | acyclic 2>/dev/null; then
        echo "check_cycles: self-test failed: the cycle up.c <-> down.c went unnoticed" >&2
        exit 1
    fi
    echo "check_cycles: self-test passed (a planted cycle is caught)"
    exit 0
fi

build=${1:?usage: check_cycles.sh BUILD_DIR | --self-test}
mapfile -t objs < <(find "$build/CMakeFiles/rly_relay.dir" "$build/CMakeFiles/rly_common.dir" "$build/CMakeFiles/authrelay.dir" \
    -name '*.c.o' | sort)
if [ "${#objs[@]}" -lt 20 ]; then
    echo "check_cycles: found only ${#objs[@]} object files under $build: build it first" >&2
    exit 1
fi
edges "${objs[@]}" | acyclic
echo "check_cycles: ${#objs[@]} files, $(edges "${objs[@]}" | wc -l) call edges between them, no cycle"
