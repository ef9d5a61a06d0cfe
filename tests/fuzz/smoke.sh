#!/usr/bin/env bash
# smoke.sh: builds the libFuzzer targets and runs each for a few seconds from a scratch copy of its seeds, with its
# dictionary; any crash, leak, timeout or out-of-memory (a non-zero libFuzzer exit) fails the run, with the log's tail.
#
# usage: tests/fuzz/smoke.sh BUILD_DIR [SECONDS [TARGET...]]
#          SECONDS per target (default: RLY_FUZZ_SECONDS or 10); TARGETs default to every tests/fuzz/fuzz_*.c
#        tests/fuzz/smoke.sh --self-test BUILD_DIR
#          proves that the run fails: it must exit non-zero on copies of fuzz_prefer with a planted crash, leak and
#          timeout (tests/fuzz/planted/), and zero on the healthy fuzz_prefer
# environment: RLY_FUZZ_TIMEOUT (seconds one input may take, default 10), CC (default clang), RLY_FUZZ_ARTIFACTS (where
#              the input that failed a target is kept, default tests/artifacts/fuzz, which git ignores)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/lib.sh" # fuzz_max_len

die() {
    echo "smoke.sh: $*" >&2
    exit 2
}

configure() { # build dir
    if [ ! -f "$1/CMakeCache.txt" ] || ! grep -q '^AUTHRELAY_FUZZ:BOOL=ON' "$1/CMakeCache.txt"; then
        CC=${CC:-clang} cmake -S "$top" -B "$1" -DAUTHRELAY_FUZZ=ON -DAUTHRELAY_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    else
        cmake "$1" >/dev/null # picks up new tests/fuzz/fuzz_*.c
    fi
}

# the seeds and dictionary of a target; a planted copy uses fuzz_prefer's
seeds_of() {
    case $1 in
    fuzz_planted_*) echo "$here/corpus/fuzz_prefer" ;;
    *) echo "$here/corpus/$1" ;;
    esac
}
dict_of() {
    case $1 in
    fuzz_planted_*) echo "$here/fuzz_prefer.dict" ;;
    *) echo "$here/$1.dict" ;;
    esac
}

if [ "${1:-}" = --self-test ]; then
    [ $# -eq 2 ] || die "usage: smoke.sh --self-test BUILD_DIR"
    dir=$2
    configure "$dir"
    cmake --build "$dir" -j2 --target fuzz_prefer fuzz_planted_crash fuzz_planted_leak fuzz_planted_timeout
    status=0
    # each planted bug: the run must fail, and because of the bug (the libFuzzer report in the tail), not otherwise
    for kind in crash:'ERROR: libFuzzer: deadly signal' leak:'ERROR: LeakSanitizer: detected memory leaks' \
        timeout:'ERROR: libFuzzer: timeout'; do
        name=fuzz_planted_${kind%%:*}
        want=${kind#*:}
        log=$(mktemp)
        if RLY_FUZZ_TIMEOUT=2 RLY_FUZZ_ARTIFACTS=$log.artifacts "$0" "$dir" 30 "$name" >"$log" 2>&1; then
            echo "self-test FAILED: smoke.sh passed on $name (a planted ${kind%%:*})" >&2
            status=1
        elif ! grep -qF "$want" "$log" || ! grep -qF "fuzz target $name failed" "$log"; then
            echo "self-test FAILED: smoke.sh failed on $name, but not with \"$want\":" >&2
            tail -20 "$log" >&2
            status=1
        else
            echo "self-test: $name fails the run ($want)"
        fi
        rm -rf "$log" "$log.artifacts"
    done
    log=$(mktemp)
    if "$0" "$dir" 3 fuzz_prefer >"$log" 2>&1; then
        echo "self-test: fuzz_prefer (healthy) passes"
    else
        echo "self-test FAILED: smoke.sh failed on the healthy fuzz_prefer:" >&2
        tail -20 "$log" >&2
        status=1
    fi
    rm -f "$log"
    exit $status
fi

[ $# -ge 1 ] || die "usage: smoke.sh BUILD_DIR [SECONDS [TARGET...]] | --self-test BUILD_DIR"
dir=$1
secs=${2:-${RLY_FUZZ_SECONDS:-10}}
shift $(($# >= 2 ? 2 : 1))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for src in "$here"/fuzz_*.c; do
        targets+=("$(basename "$src" .c)")
    done
fi
[ ${#targets[@]} -ne 0 ] || die "no fuzz targets in $here"

configure "$dir"
cmake --build "$dir" -j2 --target "${targets[@]}"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
    seeds=$(seeds_of "$t")
    dict=$(dict_of "$t")
    # every target has its seeds and its dictionary (tests/fuzz/README.md)
    if [ ! -d "$seeds" ] || [ -z "$(ls -A "$seeds")" ]; then
        die "$t: no seed corpus in $seeds"
    fi
    [ -f "$dict" ] || die "$t: no dictionary $dict"
    max_len=$(fuzz_max_len "$t") || die "$t: no -max_len (tests/fuzz/README.md)"
    work=$scratch/$t
    mkdir -p "$work/corpus" "$work/artifacts"
    cp -r "$seeds/." "$work/corpus/"
    # -max_len just above the target's input limit (its .options file); a non-zero exit is a crash, a leak, a timeout
    # (one input longer than RLY_FUZZ_TIMEOUT seconds) or an out-of-memory
    if "$dir/$t" -max_total_time="$secs" -max_len="$max_len" -timeout="${RLY_FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 \
        -print_final_stats=1 -dict="$dict" -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1; then
        printf '  %-20s %s\n' "$t:" "$(grep -E '^stat::number_of_executed_units' "$work/log" | sed 's/^stat::number_of_executed_units: *//') inputs"
    else
        rc=$?
        tail -40 "$work/log" >&2
        artifacts=${RLY_FUZZ_ARTIFACTS:-$top/tests/artifacts/fuzz}
        mkdir -p "$artifacts"
        cp "$work/artifacts/." "$artifacts/" -r
        echo "fuzz target $t failed (libFuzzer exit $rc); the input that did it, if any, is in $artifacts" >&2
        exit 1
    fi
done
