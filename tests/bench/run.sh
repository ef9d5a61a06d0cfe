#!/usr/bin/env bash
# run.sh: builds authrelay and flow_bench, then prints the relay's HTTP ceiling against h2o's, its flow rates and its memory
#
# Everything runs on 127.0.0.1, bounded in time and count; about 3 minutes with the defaults. Knobs (environment):
#   BUILD_DIR     an existing build tree with authrelay and flow_bench (default: builds a Release tree in build-bench)
#   THREADS       relay and h2o worker threads (default 2)
#   DURATION      seconds of each flow_bench run (default 10)
#   CONCURRENCY   flow_bench concurrencies (default "50 200")
#   HOLDS         numbers of waiting pickups whose memory is measured (default "1000 10000")
#   H2LOAD_N      requests of each h2load run (default 200000); WRK_SECS: seconds of each wrk run (default 10)
#   CB_SESSIONS   sessions pre-created for each --callbacks-only run (default 150000)
#   HTTP1_FLOW    1 to add a full-flow run over HTTP/1.1 at the first concurrency (default 1)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
THREADS=${THREADS:-2}
DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-"50 200"}
HOLDS=${HOLDS:-"1000 10000"}
H2LOAD_N=${H2LOAD_N:-200000}
WRK_SECS=${WRK_SECS:-10}
CB_SESSIONS=${CB_SESSIONS:-150000}
HTTP1_FLOW=${HTTP1_FLOW:-1}

die() {
    echo "run.sh: $*" >&2
    exit 1
}

for tool in h2load wrk h2o openssl curl; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install -y nghttp2-client wrk h2o openssl curl)"
done

# ---- build ----
if [ -z "${BUILD_DIR:-}" ]; then
    BUILD_DIR=$ROOT/build-bench
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null || die "cmake configure failed"
fi
cmake --build "$BUILD_DIR" -j2 --target authrelay flow_bench >"${TMPDIR:-/tmp}/authrelay-bench-build.log" 2>&1 ||
    die "build failed in $BUILD_DIR: $(tail -20 "${TMPDIR:-/tmp}/authrelay-bench-build.log")"
RELAY_BIN=$BUILD_DIR/authrelay
BENCH_BIN=$BUILD_DIR/flow_bench
[ -x "$RELAY_BIN" ] && [ -x "$BENCH_BIN" ] || die "no authrelay / flow_bench in $BUILD_DIR"

# ---- processes we start, and only those, are stopped on exit ----
TMP=$(mktemp -d /tmp/authrelay-bench.XXXXXX)
RELAY_PID=
H2O_PID=
BENCH_PID=
stop_pid() {
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}
cleanup() {
    stop_pid "$BENCH_PID"
    stop_pid "$H2O_PID"
    stop_pid "$RELAY_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# thousands of waiting pickups need descriptors on both sides
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# a free loopback port: nothing listens on it and nothing answers a connect
free_port() {
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 40000))
        if ss -ltnH 2>/dev/null | awk '{print $4}' | grep -q ":$p\$"; then
            continue
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            continue
        fi
        echo "$p"
        return 0
    done
    die "no free port"
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
mb() { awk -v k="$1" 'BEGIN {printf "%.1f MB", k / 1024}'; }
# value of key=... in flow_bench's RESULT line
field() { sed -n 's/^RESULT .*[ ]'"$2"'=\([^ ]*\).*/\1/p' "$1" | head -1; }
metric() { curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk -v m="$1" '$1 == m {print $2}' | head -1; }
# after each phase: a relay that died is reported (with its exit status) and restarted, so the remaining figures still come
declare -a CRASHES=()
relay_alive() { # phase
    kill -0 "$RELAY_PID" 2>/dev/null && return 0
    wait "$RELAY_PID"
    local rc=$?
    local why="exit status $rc"
    [ "$rc" -gt 128 ] && why="killed by signal $((rc - 128))$([ "$rc" = 139 ] && echo ' (SIGSEGV)')"
    CRASHES+=("  the relay died during: $1 ($why); restarted for what follows")
    echo "run.sh: the relay died during $1 ($why); restarting it" >&2
    start_relay
}

PORT=$(free_port)
ADMIN_PORT=$(free_port)
H2O_PORT=$(free_port)
BASE=https://localhost:$PORT
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the relay ----
start_relay() {
    "$RELAY_BIN" serve --dev --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" --rate-limit 0 \
        --threads "$THREADS" >"$TMP/relay.log" 2>>"$TMP/relay.err" </dev/null &
    RELAY_PID=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$ADMIN_PORT/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    curl -sf "http://127.0.0.1:$ADMIN_PORT/healthz" >/dev/null || die "the relay did not come up: $(cat "$TMP/relay.err")"
}
start_relay
sleep 0.5
RSS_IDLE=$(rss_kb "$RELAY_PID")
echo "relay pid $RELAY_PID on 127.0.0.1:$PORT (admin $ADMIN_PORT), $THREADS threads; idle VmRSS $(mb "$RSS_IDLE")"

# ---- (d) memory with waiting pickups, first, so nothing else is in the store ----
declare -a HOLD_ROWS=()
for n in $HOLDS; do
    out=$TMP/hold-$n.out
    "$BENCH_BIN" --url "$BASE" --hold "$n" --hold-secs 20 >"$out" 2>&1 &
    BENCH_PID=$!
    for _ in $(seq 1 600); do
        grep -q '^HOLDING' "$out" && break
        kill -0 "$BENCH_PID" 2>/dev/null || break
        sleep 0.1
    done
    waiting=0
    if grep -q '^HOLDING' "$out"; then
        for _ in $(seq 1 100); do
            waiting=$(metric authrelay_waiting_pickups)
            [ "${waiting:-0}" -ge "$n" ] && break
            sleep 0.1
        done
        sleep 0.3
    fi
    rss_hold=$(rss_kb "$RELAY_PID")
    conns=$(sed -n 's/^HOLDING .* on \([0-9]*\) connections.*/\1/p' "$out")
    kill -TERM "$BENCH_PID" 2>/dev/null # ends the hold; flow_bench then deletes its sessions
    wait "$BENCH_PID"
    BENCH_PID=
    sleep 0.3
    rss_after=$(rss_kb "$RELAY_PID")
    sed 's/^/    /' "$out"
    errs=$(field "$out" errors)
    per=$(awk -v a="$rss_hold" -v b="$RSS_IDLE" -v n="$n" 'BEGIN {printf "%.1f", (a - b) / n}')
    HOLD_ROWS+=("$(printf '  %-34s %10s   %+6s KB/pickup vs idle; %s waiting on %s TLS connections; errors %s' \
        "$n waiting pickups (HTTP/2)" "$(mb "$rss_hold")" "$per" "${waiting:-?}" "${conns:-?}" "${errs:-?}")")
    HOLD_ROWS+=("$(printf '  %-34s %10s' "after releasing and deleting them" "$(mb "$rss_after")")")
    relay_alive "hold $n"
done

# ---- (a)/(b) raw HTTP ceiling: the relay's discovery document against h2o serving the same bytes from a file ----
run_h2load() { # url out
    h2load -n "$H2LOAD_N" -c 50 -m 10 -t 1 "$1" >"$2" 2>&1
}
run_wrk() { # url out
    wrk -t1 -c50 -d"${WRK_SECS}s" "$1" >"$2" 2>&1
}
h2load_rps() { sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$1"; }
h2load_mean() { awk '/^time for request:/ {print $6}' "$1"; }
h2load_bad() { sed -n 's/^requests: .* \([0-9]*\) failed, \([0-9]*\) errored.*/\1 \2/p' "$1" | awk '{print $1 + $2}'; }
wrk_rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
wrk_mean() { awk '$1 == "Latency" {print $2}' "$1"; }
wrk_bad() { awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' "$1"; }

echo "h2load and wrk against the relay's GET /.well-known/authrelay ..."
run_h2load "https://127.0.0.1:$PORT/.well-known/authrelay" "$TMP/relay-h2load.out"
run_wrk "https://127.0.0.1:$PORT/.well-known/authrelay" "$TMP/relay-wrk.out"
relay_alive "h2load/wrk"

mkdir -p "$TMP/www/.well-known"
curl -sk "https://127.0.0.1:$PORT/.well-known/authrelay" >"$TMP/www/.well-known/authrelay"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost \
    -keyout "$TMP/h2o-key.pem" -out "$TMP/h2o-cert.pem" >/dev/null 2>&1 || die "openssl req failed"
chmod -R a+rX "$TMP"
{
    [ "$(id -u)" = 0 ] && echo "user: root"
    echo "num-threads: $THREADS"
    echo "listen:"
    echo "  host: 127.0.0.1"
    echo "  port: $H2O_PORT"
    echo "  ssl:"
    echo "    certificate-file: $TMP/h2o-cert.pem"
    echo "    key-file: $TMP/h2o-key.pem"
    echo "hosts:"
    echo "  default:"
    echo "    paths:"
    echo "      /:"
    echo "        file.dir: $TMP/www"
} >"$TMP/h2o.conf"
h2o -c "$TMP/h2o.conf" >"$TMP/h2o.log" 2>&1 </dev/null &
H2O_PID=$!
for _ in $(seq 1 100); do
    curl -skf "https://127.0.0.1:$H2O_PORT/.well-known/authrelay" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -skf "https://127.0.0.1:$H2O_PORT/.well-known/authrelay" >/dev/null || die "h2o did not come up: $(cat "$TMP/h2o.log")"
echo "h2load and wrk against h2o $(h2o --version | head -1 | awk '{print $3}') serving the same $(wc -c <"$TMP/www/.well-known/authrelay") bytes ..."
run_h2load "https://127.0.0.1:$H2O_PORT/.well-known/authrelay" "$TMP/h2o-h2load.out"
run_wrk "https://127.0.0.1:$H2O_PORT/.well-known/authrelay" "$TMP/h2o-wrk.out"
stop_pid "$H2O_PID"
H2O_PID=

# ---- (c) flows ----
declare -a FLOW_ROWS=()
flow_row() { # label out kind
    local out=$2
    if ! grep -q '^RESULT' "$out"; then
        FLOW_ROWS+=("$(printf '  %-30s (no result: see above)' "$1")")
        return
    fi
    if [ "$3" = callbacks ]; then
        FLOW_ROWS+=("$(printf '  %-30s %4s %9s %7s %7s %7s %8s %15s %6s' "$1" "$(field "$out" c)" "$(field "$out" rate)" \
            "$(field "$out" cb_p50)" "$(field "$out" cb_p90)" "$(field "$out" cb_p99)" "$(field "$out" cb_max)" "-" \
            "$(field "$out" errors)")")
    else
        FLOW_ROWS+=("$(printf '  %-30s %4s %9s %7s %7s %7s %8s %15s %6s' "$1" "$(field "$out" c)" "$(field "$out" rate)" \
            "$(field "$out" flow_p50)" "$(field "$out" flow_p90)" "$(field "$out" flow_p99)" "$(field "$out" flow_max)" \
            "$(field "$out" wake_p50)/$(field "$out" wake_p99)" "$(field "$out" errors)")")
    fi
}
run_bench() { # out args...
    local out=$1
    shift
    "$BENCH_BIN" --url "$BASE" "$@" >"$out" 2>&1 &
    BENCH_PID=$!
    wait "$BENCH_PID"
    BENCH_PID=
    sed 's/^/    /' "$out"
    relay_alive "flow_bench $*"
}

declare -a CREATE_ROWS=()
for c in $CONCURRENCY; do
    echo "flow_bench --callbacks-only -c $c -d $DURATION --sessions $CB_SESSIONS ..."
    run_bench "$TMP/cb-$c.out" --callbacks-only -c "$c" -d "$DURATION" --sessions "$CB_SESSIONS"
    flow_row "callbacks only (303), HTTP/2" "$TMP/cb-$c.out" callbacks
    CREATE_ROWS+=("$(printf '  %-30s %4s %9s %7s %7s' "session creation (201), HTTP/2" "$c" "$(field "$TMP/cb-$c.out" create_rate)" \
        "$(field "$TMP/cb-$c.out" create_p50)" "-")")
done
WAKES_BEFORE=$(metric authrelay_wake_latency_seconds_count)
FLOWS_DONE=0
for c in $CONCURRENCY; do
    echo "flow_bench -c $c -d $DURATION ..."
    run_bench "$TMP/flow-$c.out" -c "$c" -d "$DURATION"
    flow_row "full flow, HTTP/2" "$TMP/flow-$c.out" flow
    FLOWS_DONE=$((FLOWS_DONE + $(field "$TMP/flow-$c.out" flows)))
done
if [ "$HTTP1_FLOW" = 1 ]; then
    c=${CONCURRENCY%% *}
    echo "flow_bench --http1 -c $c -d $DURATION ..."
    run_bench "$TMP/flow-h1-$c.out" --http1 -c "$c" -d "$DURATION"
    flow_row "full flow, HTTP/1.1" "$TMP/flow-h1-$c.out" flow
    FLOWS_DONE=$((FLOWS_DONE + $(field "$TMP/flow-h1-$c.out" flows)))
fi
WAKES_AFTER=$(metric authrelay_wake_latency_seconds_count)
RSS_END=$(rss_kb "$RELAY_PID")
RELAY_STDERR=$(grep -v '^$' "$TMP/relay.err" | head -5)

# ---- summary ----
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b}'; }
echo
echo "=============================================================================================================="
echo "authrelay benchmark summary: $(nproc) CPUs, relay and h2o --threads $THREADS, load average at start $LOAD_AT_START"
echo "=============================================================================================================="
echo "raw HTTP ceiling, GET /.well-known/authrelay over TLS    relay        h2o  relay/h2o   failed (relay/h2o)"
r=$(h2load_rps "$TMP/relay-h2load.out")
h=$(h2load_rps "$TMP/h2o-h2load.out")
printf '  %-50s %9s %10s %10s   %s/%s\n' "h2load HTTP/2 -c50 -m10, req/s" "$r" "$h" "$(ratio "$r" "$h")" \
    "$(h2load_bad "$TMP/relay-h2load.out")" "$(h2load_bad "$TMP/h2o-h2load.out")"
r=$(h2load_mean "$TMP/relay-h2load.out")
h=$(h2load_mean "$TMP/h2o-h2load.out")
printf '  %-50s %9s %10s\n' "h2load HTTP/2 mean time per request" "$r" "$h"
r=$(wrk_rps "$TMP/relay-wrk.out")
h=$(wrk_rps "$TMP/h2o-wrk.out")
printf '  %-50s %9s %10s %10s   %s/%s\n' "wrk HTTP/1.1 -c50 ${WRK_SECS}s, req/s" "$r" "$h" "$(ratio "$r" "$h")" \
    "$(wrk_bad "$TMP/relay-wrk.out")" "$(wrk_bad "$TMP/h2o-wrk.out")"
r=$(wrk_mean "$TMP/relay-wrk.out")
h=$(wrk_mean "$TMP/h2o-wrk.out")
printf '  %-50s %9s %10s\n' "wrk HTTP/1.1 mean latency" "$r" "$h"
echo
echo "flows (flow_bench, ${DURATION}s each)      c    per s  p50 ms  p90 ms  p99 ms   max ms  wake p50/p99 ms errors"
for row in "${CREATE_ROWS[@]}" "${FLOW_ROWS[@]}"; do
    echo "$row"
done
if [ "${#CRASHES[@]}" -eq 0 ] && [ -n "$WAKES_BEFORE" ] && [ -n "$WAKES_AFTER" ] && [ "$FLOWS_DONE" -gt 0 ]; then
    echo "  pickups already waiting when their code arrived (relay's wake counter): $((WAKES_AFTER - WAKES_BEFORE)) of $FLOWS_DONE flows"
fi
echo
echo "memory (relay VmRSS)"
printf '  %-34s %10s\n' "idle" "$(mb "$RSS_IDLE")"
for row in "${HOLD_ROWS[@]}"; do
    echo "$row"
done
printf '  %-34s %10s\n' "after all the runs above" "$(mb "$RSS_END")"
echo
if [ -n "$RELAY_STDERR" ]; then
    echo "relay stderr:"
    echo "$RELAY_STDERR"
fi
relay_alive "the last run"
if [ "${#CRASHES[@]}" -ne 0 ]; then
    echo "RELAY CRASHES (figures after a crash come from a fresh process):"
    printf '%s\n' "${CRASHES[@]}"
else
    echo "the relay ran through everything without exiting"
fi
