#!/usr/bin/env bash
# run-long.sh: a long run of every libFuzzer target, one after another: each until RUNS executions (default 10 million)
# or MAX_SECONDS (default 4000: enough for the slowest targets, fuzz_seal and fuzz_audit, to reach 10 million on
# this machine), whichever comes first, from a scratch copy of its seeds with its dictionary; prints a
# table of executions, exec/s, seconds and whether RUNS was reached. A crash, leak, timeout or out-of-memory stops it
# (exit 1, the log's tail and the input in tests/artifacts/fuzz); a target capped by time is reported, not failed.
# usage: tests/fuzz/run-long.sh BUILD_DIR [RUNS [MAX_SECONDS [TARGET...]]]      (builds like smoke.sh; CC default clang)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/lib.sh" # fuzz_max_len

[ $# -ge 1 ] || {
    echo "usage: run-long.sh BUILD_DIR [RUNS [MAX_SECONDS [TARGET...]]]" >&2
    exit 2
}
dir=$1
runs=${2:-10000000}
max=${3:-4000}
shift $(($# >= 3 ? 3 : $#))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for src in "$here"/fuzz_*.c; do
        targets+=("$(basename "$src" .c)")
    done
fi

if [ ! -f "$dir/CMakeCache.txt" ] || ! grep -q '^AUTHRELAY_FUZZ:BOOL=ON' "$dir/CMakeCache.txt"; then
    CC=${CC:-clang} cmake -S "$top" -B "$dir" -DAUTHRELAY_FUZZ=ON -DAUTHRELAY_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
else
    cmake "$dir" >/dev/null
fi
cmake --build "$dir" -j2 --target "${targets[@]}" >/dev/null

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
echo "run-long: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)," \
    "-runs=$runs, at most ${max}s per target"
table=$(printf '| %-20s | %7s | %12s | %8s | %7s | %-21s |\n|---|---:|---:|---:|---:|---|' target max_len executions exec/s seconds \
    "reached $runs")
for t in "${targets[@]}"; do
    max_len=$(fuzz_max_len "$t") || exit 2
    work=$scratch/$t
    mkdir -p "$work/corpus" "$work/artifacts"
    cp -r "$here/corpus/$t/." "$work/corpus/"
    start=$(date +%s%3N)
    if ! "$dir/$t" -runs="$runs" -max_total_time="$max" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -dict="$here/$t.dict" -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1; then
        tail -40 "$work/log" >&2
        mkdir -p "$top/tests/artifacts/fuzz"
        cp -r "$work/artifacts/." "$top/tests/artifacts/fuzz/"
        echo "run-long: $t failed after $((($(date +%s%3N) - start) / 1000))s; the input, if any, is in tests/artifacts/fuzz" >&2
        exit 1
    fi
    ms=$(($(date +%s%3N) - start))
    secs=$(((ms + 500) / 1000))
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
    # libFuzzer's stat::average_exec_per_sec counts whole seconds (0 for a run under one); this is the same from ms
    rate=$((n * 1000 / (ms != 0 ? ms : 1)))
    reached=no
    [ "$n" -ge "$runs" ] && reached=yes
    line=$(printf '| %-20s | %7s | %12s | %8s | %7s | %-21s |' "\`$t\`" "$max_len" "$n" "$rate" "$secs" "$reached")
    echo "$line"
    table+=$'\n'"$line"
done
echo
echo "$table"
