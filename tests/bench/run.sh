#!/usr/bin/env bash
# run.sh: builds authrelay and flow_bench, then prints the relay's figures next to the h2o ceiling
#
#   tests/bench/run.sh [--redis | --memory]
#
# --redis (the default when redis-server is installed): one redis-server and two replicas A and B on it; sessions,
# pickups and deletes go to A, the callbacks (the browser) to B. Measures held pickups' memory (A's and B's VmRSS), the
# wake latency with 1,000 waiters, callbacks per second, full flows per second, a short memory-store comparison and
# the h2o ceiling; prints every rate as a ratio of the ceiling and the issue's targets as met / not met.
# --memory: the single-process suite (a --dev relay, memory store).
#
# Everything runs on 127.0.0.1, bounded in time and count; about 3 minutes either way. Knobs (environment):
#   BUILD_DIR       an existing build tree with authrelay and flow_bench (default: builds a Release tree in build-bench)
#   THREADS         relay and h2o worker threads, per process (default 2)
#   DURATION        seconds of each flow_bench run (default 10)
#   CONCURRENCY     full-flow concurrencies (default "50 200")
#   H2LOAD_N        requests of each h2load run (default 200000); WRK_SECS: seconds of each wrk run (default 10)
#   CB_SESSIONS     sessions pre-created for each --callbacks-only run (default 150000; --redis: 100000)
#   --memory only:  HOLDS (default "1000 10000"), HTTP1_FLOW (1: a full-flow run over HTTP/1.1)
#   --redis only:   HOLD_N (10000), HOLD_SECS (5), WAKE_N (1000), WAKE_RATE (200 callbacks/s), CB_CONCURRENCY ("50"),
#                   MEMORY_COMPARE (1: callbacks and a full flow at c=50 against a --dev memory-store relay too)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
H2_CB_N=${H2_CB_N:-15000} # states per h2load client in the h2load-driven callback run
MODE=
for arg in "$@"; do
    case $arg in
    --redis) MODE=redis ;;
    --memory) MODE=memory ;;
    -h | --help)
        sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "run.sh: unknown argument $arg (--redis or --memory)" >&2
        exit 2
        ;;
    esac
done
if [ -z "$MODE" ]; then
    if command -v redis-server >/dev/null; then MODE=redis; else MODE=memory; fi
fi
THREADS=${THREADS:-2}
DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-"50 200"}
HOLDS=${HOLDS:-"1000 10000"}
H2LOAD_N=${H2LOAD_N:-200000}
WRK_SECS=${WRK_SECS:-10}
if [ "$MODE" = redis ]; then CB_SESSIONS=${CB_SESSIONS:-100000}; else CB_SESSIONS=${CB_SESSIONS:-150000}; fi
HTTP1_FLOW=${HTTP1_FLOW:-1}
HOLD_N=${HOLD_N:-10000}
HOLD_SECS=${HOLD_SECS:-5}
WAKE_N=${WAKE_N:-1000}
WAKE_RATE=${WAKE_RATE:-200}
CB_CONCURRENCY=${CB_CONCURRENCY:-"50"}
MEMORY_COMPARE=${MEMORY_COMPARE:-1}

die() {
    echo "run.sh: $*" >&2
    exit 1
}

for tool in h2load wrk h2o openssl curl; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install -y nghttp2-client wrk h2o openssl curl)"
done
if [ "$MODE" = redis ]; then
    for tool in redis-server redis-cli; do
        command -v "$tool" >/dev/null || die "$tool is missing (apt-get install -y redis-server), or run with --memory"
    done
fi

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
declare -A RPID=() RPORT=() RADMIN=() RARGS=() ERR_SEEN=() RUN_CRASHED=()
H2O_PID=
BENCH_PID=
REDIS_PID=
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
    for name in "${!RPID[@]}"; do
        stop_pid "${RPID[$name]}"
    done
    stop_pid "$REDIS_PID"
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
metric() { curl -s "http://127.0.0.1:${RADMIN[$1]}/metrics" | awk -v m="$2" '$1 == m {print $2}' | head -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b}'; }

# ---- relays: RARGS[name] holds a relay's own options (paths under $TMP have no spaces: word splitting is safe) ----
start_relay() { # name
    local name=$1
    ERR_SEEN[$name]=$(wc -l 2>/dev/null <"$TMP/relay-$name.err" || echo 0)
    # shellcheck disable=SC2086
    "$RELAY_BIN" serve ${RARGS[$name]} --listen "127.0.0.1:${RPORT[$name]}" --admin-listen "127.0.0.1:${RADMIN[$name]}" \
        --rate-limit 0 --allow-unbound --threads "$THREADS" >"$TMP/relay-$name.log" 2>>"$TMP/relay-$name.err" </dev/null &
    RPID[$name]=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:${RADMIN[$name]}/readyz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    curl -sf "http://127.0.0.1:${RADMIN[$name]}/readyz" >/dev/null ||
        die "relay $name did not become ready: $(cat "$TMP/relay-$name.err")"
}
# after each phase: a relay that died is reported (with its exit status and first stderr line) and restarted, so the
# remaining figures still come
declare -a CRASHES=()
relay_alive() { # name phase
    local name=$1 pid=${RPID[$1]}
    kill -0 "$pid" 2>/dev/null && return 0
    wait "$pid"
    local rc=$?
    local why="exit status $rc"
    [ "$rc" -gt 128 ] && why="killed by signal $((rc - 128))$([ "$rc" = 139 ] && echo ' (SIGSEGV)')$([ "$rc" = 134 ] && echo ' (SIGABRT)')"
    local said
    said=$(tail -n +$((${ERR_SEEN[$name]:-0} + 1)) "$TMP/relay-$name.err" 2>/dev/null | grep -v '^$' | tail -1 | cut -c1-100)
    CRASHES+=("  relay $name died during: $2 ($why${said:+; stderr: $said}); restarted for what follows")
    echo "run.sh: relay $name died during $2 ($why); restarting it" >&2
    start_relay "$name"
}
stop_relay() { # name
    stop_pid "${RPID[$1]}"
    unset "RPID[$1]"
}
# runs flow_bench (its output in out, echoed indented), then checks the relays named in CHECK
CHECK=
run_bench() { # out args...
    local out=$1 what name
    shift
    what=$(printf '%s\n' "$*" | sed 's#--[a-z-]*url [^ ]* *##g')
    "$BENCH_BIN" "$@" >"$out" 2>&1 &
    BENCH_PID=$!
    wait "$BENCH_PID"
    BENCH_PID=
    sed 's/^/    /' "$out"
    local crashes0=${#CRASHES[@]}
    for name in $CHECK; do
        relay_alive "$name" "flow_bench $what"
    done
    [ "${#CRASHES[@]}" -eq "$crashes0" ] || RUN_CRASHED[$out]=1
}

# ---- raw HTTP ceiling: a relay's discovery document against h2o serving the same bytes from a file ----
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

# the callbacks' load: 4 x h2load, each walking its own URL list (URLS-1.txt .. URLS-4.txt) once over one HTTP/2
# connection with 100 streams; CB_SHAPE_RATE: requests per second over the wall time of all four
# CPU seconds a process has used (user + system), and the shell's finished children's (the h2load runs)
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# (times must run in this shell, not in a $(...) subshell, whose children's counters start at zero)
children_cpu() { # variable to set
    times >"$TMP/times"
    printf -v "$1" '%s' "$(awk 'NR == 2 {gsub(/[ms]/, " "); print $1 * 60 + $2 + $3 * 60 + $4}' "$TMP/times")"
}
us_per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN {printf "%.1f", (b - a) * 1e6 / n}'; } # before after count

run_cb_shape() { # url-list prefix, output prefix
    local k pids=() t0 t1
    t0=$(date +%s.%N)
    for k in 1 2 3 4; do
        h2load -i "$1-$k.txt" -n "$H2_CB_N" -c 1 -m 100 >"$2-$k.out" 2>&1 &
        pids+=($!)
    done
    wait "${pids[@]}" || true
    t1=$(date +%s.%N)
    CB_SHAPE_RATE=$(awk -v n=$((4 * H2_CB_N)) -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", n / (b - a)}')
}

H2O_PORT=$(free_port)
H2O_BYTES="?"
H2O_CB="" # h2o under the callbacks' own load, req/s (--redis)
H2O_CB_BYTES="?"
H2O_CB_CPU="?" # CPU per request of each process in that run, microseconds
H2_CB_CPU="?"  # the same for the relay's h2load-driven callback run
measure_ceiling() { # relay name
    local port=${RPORT[$1]} k
    echo "h2load and wrk against relay $1's GET /.well-known/authrelay ..."
    run_h2load "https://127.0.0.1:$port/.well-known/authrelay" "$TMP/relay-h2load.out"
    run_wrk "https://127.0.0.1:$port/.well-known/authrelay" "$TMP/relay-wrk.out"
    relay_alive "$1" "h2load/wrk"

    mkdir -p "$TMP/www/.well-known"
    curl -sk "https://127.0.0.1:$port/.well-known/authrelay" >"$TMP/www/.well-known/authrelay"
    H2O_BYTES=$(wc -c <"$TMP/www/.well-known/authrelay")
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
    echo "h2load and wrk against h2o $(h2o --version | head -1 | awk '{print $3}') serving the same $H2O_BYTES bytes ..."
    run_h2load "https://127.0.0.1:$H2O_PORT/.well-known/authrelay" "$TMP/h2o-h2load.out"
    run_wrk "https://127.0.0.1:$H2O_PORT/.well-known/authrelay" "$TMP/h2o-wrk.out"
    if [ -s "$TMP/cb-page.html" ] && [ -f "$TMP/cb-urls-1.txt" ]; then
        # the same requests the callbacks were (paths, query strings, connections, streams), answered with the relay's
        # own page from a file
        cp "$TMP/cb-page.html" "$TMP/www/qorus-oauth2-redirect"
        H2O_CB_BYTES=$(wc -c <"$TMP/www/qorus-oauth2-redirect")
        for k in 1 2 3 4; do
            sed "s|^https://127.0.0.1:[0-9]*/|https://127.0.0.1:$H2O_PORT/|" "$TMP/cb-urls-$k.txt" >"$TMP/h2o-cb-urls-$k.txt"
        done
        echo "4 x h2load -i URLS -c 1 -m 100 against h2o: the callbacks' requests, the $H2O_CB_BYTES-byte page from a file ..."
        local h0 c0 c1
        h0=$(cpu_of "$H2O_PID")
        children_cpu c0
        run_cb_shape "$TMP/h2o-cb-urls" "$TMP/h2o-cb-h2load"
        children_cpu c1
        H2O_CB=$CB_SHAPE_RATE
        H2O_CB_CPU="h2o $(us_per "$h0" "$(cpu_of "$H2O_PID")" $((4 * H2_CB_N))), h2load $(us_per "$c0" "$c1" $((4 * H2_CB_N)))"
    fi
    stop_pid "$H2O_PID"
    H2O_PID=
}
# protocol 1.1's extra step: the confirmation page (GET /v1/start?t=...: two store reads, a cookie, a CSRF token, the page)
# under h2load; a GET never consumes the token, so one session serves the whole run
START_RPS=""
START_MS=""
measure_start_page() { # relay name
    local port=${RPORT[$1]} body url
    body='{"authorization_server": "https://auth.atlassian.com/authorize", "return_uri": "https://qorus.example.com:8011/grant",
           "authorize_params": {"client_id": "bench", "scope": "read:jira-work"}, "label": "bench"}'
    url=$(curl -sk "https://127.0.0.1:$port/v1/sessions" -H 'Content-Type: application/json' -d "$body" |
        sed -n 's/.*"start_url":"\([^"]*\)".*/\1/p' | sed "s#https://[^/]*#https://127.0.0.1:$port#")
    [ -n "$url" ] || { echo "run.sh: no 1.1 session on relay $1 for the start page" >&2; return; }
    echo "h2load against relay $1's confirmation page (GET /v1/start) ..."
    h2load -n 20000 -c 10 -m 1 -t 1 "$url" >"$TMP/start-h2load.out" 2>&1
    START_RPS=$(h2load_rps "$TMP/start-h2load.out")
    START_MS=$(awk '/^time for request:/ {v=$6; u=substr(v, length(v)-1); n=v+0; if (u == "us") n /= 1000; if (u != "ms" && u != "us") n *= 1000; printf "%.2f", n}' "$TMP/start-h2load.out")
    relay_alive "$1" "start page"
}

print_ceiling() { # relay label
    echo "raw HTTP ceiling, GET /.well-known/authrelay over TLS    $(printf '%6s' "$1")        h2o  relay/h2o   failed (relay/h2o)"
    local r h
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
}

# ---- flow rows (both modes) ----
FLOWS_HEADER="      c    per s  p50 ms  p90 ms  p99 ms   max ms  wake p50/p99 ms errors"
declare -a FLOW_ROWS=()
flow_row() { # label out kind
    local out=$2
    if ! grep -q '^RESULT' "$out"; then
        FLOW_ROWS+=("$(printf '  %-36s (no result: see above)' "$1")")
        return
    fi
    if [ "$3" = callbacks ]; then
        FLOW_ROWS+=("$(printf '  %-36s %4s %9s %7s %7s %7s %8s %15s %6s' "$1" "$(field "$out" c)" "$(field "$out" rate)" \
            "$(field "$out" cb_p50)" "$(field "$out" cb_p90)" "$(field "$out" cb_p99)" "$(field "$out" cb_max)" "-" \
            "$(field "$out" errors)")")
    elif [ "$3" = create ]; then
        FLOW_ROWS+=("$(printf '  %-36s %4s %9s %7s %7s %7s %8s %15s %6s' "$1" "$(field "$out" c)" "$(field "$out" create_rate)" \
            "$(field "$out" create_p50)" "-" "$(field "$out" create_p99)" "-" "-" "-")")
    else
        FLOW_ROWS+=("$(printf '  %-36s %4s %9s %7s %7s %7s %8s %15s %6s' "$1" "$(field "$out" c)" "$(field "$out" rate)" \
            "$(field "$out" flow_p50)" "$(field "$out" flow_p90)" "$(field "$out" flow_p99)" "$(field "$out" flow_max)" \
            "$(field "$out" wake_p50)/$(field "$out" wake_p99)" "$(field "$out" errors)")")
    fi
}
print_stderr_and_crashes() {
    local name said
    for name in $(printf '%s\n' "${!RPID[@]}" | sort); do
        relay_alive "$name" "the last run"
    done
    for f in "$TMP"/relay-*.err; do
        [ -e "$f" ] || continue
        said=$(grep -v '^$' "$f" | head -5)
        if [ -n "$said" ]; then
            name=${f##*/relay-}
            echo "relay ${name%.err} stderr:"
            echo "$said"
        fi
    done
    if [ "${#CRASHES[@]}" -ne 0 ]; then
        echo "RELAY CRASHES (figures after a crash come from a fresh process):"
        printf '%s\n' "${CRASHES[@]}"
    else
        echo "no relay exited during the runs"
    fi
}

# =====================================================================================================================
# --memory: one --dev relay (memory store)
# =====================================================================================================================
memory_main() {
    RPORT[M]=$(free_port)
    RADMIN[M]=$(free_port)
    RARGS[M]=--dev
    CHECK=M
    local BASE=https://localhost:${RPORT[M]}
    start_relay M
    sleep 0.5
    local RSS_IDLE
    RSS_IDLE=$(rss_kb "${RPID[M]}")
    echo "relay pid ${RPID[M]} on 127.0.0.1:${RPORT[M]} (admin ${RADMIN[M]}), $THREADS threads; idle VmRSS $(mb "$RSS_IDLE")"

    # ---- memory with waiting pickups, first, so nothing else is in the store ----
    declare -a HOLD_ROWS=()
    local n out waiting rss_hold conns rss_after errs per
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
                waiting=$(metric M authrelay_waiting_pickups)
                [ "${waiting:-0}" -ge "$n" ] && break
                sleep 0.1
            done
            sleep 0.3
        fi
        rss_hold=$(rss_kb "${RPID[M]}")
        conns=$(sed -n 's/^HOLDING .* on \([0-9]*\) connections.*/\1/p' "$out")
        kill -TERM "$BENCH_PID" 2>/dev/null # ends the hold; flow_bench then deletes its sessions
        wait "$BENCH_PID"
        BENCH_PID=
        sleep 0.3
        rss_after=$(rss_kb "${RPID[M]}")
        sed 's/^/    /' "$out"
        errs=$(field "$out" errors)
        per=$(awk -v a="$rss_hold" -v b="$RSS_IDLE" -v n="$n" 'BEGIN {printf "%.1f", (a - b) / n}')
        HOLD_ROWS+=("$(printf '  %-34s %10s   %+6s KB/pickup vs idle; %s waiting on %s TLS connections; errors %s' \
            "$n waiting pickups (HTTP/2)" "$(mb "$rss_hold")" "$per" "${waiting:-?}" "${conns:-?}" "${errs:-?}")")
        HOLD_ROWS+=("$(printf '  %-34s %10s' "after releasing and deleting them" "$(mb "$rss_after")")")
        relay_alive M "hold $n"
    done

    measure_ceiling M

    # ---- flows ----
    local c
    declare -a CREATE_ROWS=()
    for c in $CONCURRENCY; do
        echo "flow_bench --callbacks-only -c $c -d $DURATION --sessions $CB_SESSIONS ..."
        run_bench "$TMP/cb-$c.out" --url "$BASE" --callbacks-only -c "$c" -d "$DURATION" --sessions "$CB_SESSIONS"
        flow_row "callbacks only (303), HTTP/2" "$TMP/cb-$c.out" callbacks
        CREATE_ROWS+=("$(printf '  %-36s %4s %9s %7s %7s' "session creation (201), HTTP/2" "$c" \
            "$(field "$TMP/cb-$c.out" create_rate)" "$(field "$TMP/cb-$c.out" create_p50)" "-")")
    done
    local WAKES_BEFORE WAKES_AFTER FLOWS_DONE=0 CRASHES_BEFORE=${#CRASHES[@]}
    WAKES_BEFORE=$(metric M authrelay_wake_latency_seconds_count)
    for c in $CONCURRENCY; do
        echo "flow_bench -c $c -d $DURATION ..."
        run_bench "$TMP/flow-$c.out" --url "$BASE" -c "$c" -d "$DURATION"
        flow_row "full flow, HTTP/2" "$TMP/flow-$c.out" flow
        FLOWS_DONE=$((FLOWS_DONE + $(field "$TMP/flow-$c.out" flows)))
    done
    if [ "$HTTP1_FLOW" = 1 ]; then
        c=${CONCURRENCY%% *}
        echo "flow_bench --http1 -c $c -d $DURATION ..."
        run_bench "$TMP/flow-h1-$c.out" --url "$BASE" --http1 -c "$c" -d "$DURATION"
        flow_row "full flow, HTTP/1.1" "$TMP/flow-h1-$c.out" flow
        FLOWS_DONE=$((FLOWS_DONE + $(field "$TMP/flow-h1-$c.out" flows)))
    fi
    WAKES_AFTER=$(metric M authrelay_wake_latency_seconds_count)
    local RSS_END
    RSS_END=$(rss_kb "${RPID[M]}")

    # ---- summary ----
    echo
    echo "=============================================================================================================="
    echo "authrelay benchmark summary (--memory): $(nproc) CPUs, relay and h2o --threads $THREADS, load average at start $LOAD_AT_START, at end $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "=============================================================================================================="
    print_ceiling relay
    echo
    echo "flows (flow_bench, ${DURATION}s each)       $FLOWS_HEADER"
    local row
    for row in "${CREATE_ROWS[@]}" "${FLOW_ROWS[@]}"; do
        echo "$row"
    done
    if [ "${#CRASHES[@]}" -eq "$CRASHES_BEFORE" ] && [ -n "$WAKES_BEFORE" ] && [ -n "$WAKES_AFTER" ] && [ "$FLOWS_DONE" -gt 0 ]; then
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
    print_stderr_and_crashes
}

# =====================================================================================================================
# --redis: redis-server and two replicas A and B
# =====================================================================================================================
# a note after a rate: whether the run had errors, or a relay died during it (its rate is then up to the crash)
flag() { # out
    local e
    e=$(field "$1" errors)
    if [ -n "${RUN_CRASHED[$1]:-}" ]; then
        echo " A RELAY DIED in this run (errors ${e:-?})"
    elif [ -z "$e" ]; then
        echo " (no result)"
    elif [ "$e" != 0 ]; then
        echo " (errors $e)"
    fi
}
verdict() { # awk condition on x, value
    if [ -z "$2" ] || [ "$2" = - ]; then
        echo "n/a"
        return
    fi
    awk -v x="$2" "BEGIN {print ($1) ? \"met\" : \"NOT MET\"}"
}
redis_main() {
    local REDIS_PORT
    REDIS_PORT=$(free_port)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" >"$TMP/redis.log" 2>&1 </dev/null &
    REDIS_PID=$!
    for _ in $(seq 1 100); do
        [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break
        sleep 0.1
    done
    [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] || die "redis-server did not come up: $(cat "$TMP/redis.log")"
    "$RELAY_BIN" keygen "$TMP/keys.json" >/dev/null || die "authrelay keygen failed"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$TMP/relay-key.pem" -out "$TMP/relay-cert.pem" \
        >/dev/null 2>&1 || die "openssl req failed"
    local name
    for name in A B; do
        RPORT[$name]=$(free_port)
        RADMIN[$name]=$(free_port)
    done
    # the same key file, certificate and public URL for both, as in README.md "Several replicas on one Redis"
    for name in A B; do
        RARGS[$name]="--tls-cert $TMP/relay-cert.pem --tls-key $TMP/relay-key.pem --keys $TMP/keys.json \
--public-url https://localhost:${RPORT[A]} --redis redis://127.0.0.1:$REDIS_PORT"
        start_relay "$name"
    done
    CHECK="A B"
    local URL_A=https://localhost:${RPORT[A]} URL_B=https://localhost:${RPORT[B]} ADMIN_A=http://127.0.0.1:${RADMIN[A]}
    sleep 0.5
    local IDLE_A IDLE_B
    IDLE_A=$(rss_kb "${RPID[A]}")
    IDLE_B=$(rss_kb "${RPID[B]}")
    echo "redis-server pid $REDIS_PID on 127.0.0.1:$REDIS_PORT; relay A pid ${RPID[A]} on 127.0.0.1:${RPORT[A]} (admin ${RADMIN[A]}), relay B pid ${RPID[B]} on 127.0.0.1:${RPORT[B]} (admin ${RADMIN[B]}); $THREADS threads each; idle VmRSS A $(mb "$IDLE_A"), B $(mb "$IDLE_B")"

    # ---- memory: HOLD_N waiting pickups on A, first, so nothing else is in the store ----
    local out=$TMP/hold.out waiting=0 hold_a=0 hold_b=0 conns after_a redis_mem="?"
    echo "flow_bench --hold $HOLD_N on A ..."
    "$BENCH_BIN" --url "$URL_A" --hold "$HOLD_N" --hold-secs "$HOLD_SECS" >"$out" 2>&1 &
    BENCH_PID=$!
    for _ in $(seq 1 600); do
        grep -q '^HOLDING' "$out" && break
        kill -0 "$BENCH_PID" 2>/dev/null || break
        sleep 0.1
    done
    if grep -q '^HOLDING' "$out"; then
        for _ in $(seq 1 100); do
            waiting=$(metric A authrelay_waiting_pickups)
            [ "${waiting:-0}" -ge "$HOLD_N" ] && break
            sleep 0.1
        done
        sleep 0.3
        hold_a=$(rss_kb "${RPID[A]}")
        hold_b=$(rss_kb "${RPID[B]}")
        redis_mem=$(redis-cli -p "$REDIS_PORT" info memory | sed -n 's/^used_memory_human:\([^\r]*\).*/\1/p')
    fi
    conns=$(sed -n 's/^HOLDING .* on \([0-9]*\) connections.*/\1/p' "$out")
    kill -TERM "$BENCH_PID" 2>/dev/null # ends the hold; flow_bench then deletes its sessions
    wait "$BENCH_PID"
    BENCH_PID=
    sleep 0.3
    after_a=$(rss_kb "${RPID[A]}")
    sed 's/^/    /' "$out"
    local hold_errs
    hold_errs=$(field "$out" errors)
    relay_alive A "hold $HOLD_N"
    relay_alive B "hold $HOLD_N"

    # ---- wake latency: WAKE_N pickups waiting on A, callbacks on B at WAKE_RATE per second ----
    local wake_before wake_after wake_out=$TMP/wake.out crashes0=${#CRASHES[@]}
    wake_before=$(metric A authrelay_wake_latency_seconds_count)
    echo "flow_bench --wake $WAKE_N --wake-rate $WAKE_RATE (pickups on A, callbacks on B) ..."
    run_bench "$wake_out" --url "$URL_A" --callback-url "$URL_B" --admin-url "$ADMIN_A" --wake "$WAKE_N" --wake-rate "$WAKE_RATE"
    wake_after=$(metric A authrelay_wake_latency_seconds_count)
    local woken_by_a="?"
    [ "${#CRASHES[@]}" -eq "$crashes0" ] && [ -n "$wake_before" ] && [ -n "$wake_after" ] &&
        woken_by_a=$((${wake_after%.*} - ${wake_before%.*}))

    # ---- callbacks only: sessions created on A, callbacks on B ----
    local c
    for c in $CB_CONCURRENCY; do
        echo "flow_bench --callbacks-only -c $c -d $DURATION --sessions $CB_SESSIONS (create on A, callbacks on B) ..."
        run_bench "$TMP/cb-$c.out" --url "$URL_A" --callback-url "$URL_B" --callbacks-only -c "$c" -d "$DURATION" --sessions "$CB_SESSIONS"
        flow_row "session creation on A (201)" "$TMP/cb-$c.out" create
        flow_row "callbacks on B (303)" "$TMP/cb-$c.out" callbacks
    done

    # ---- callbacks driven by h2load, the ceiling's own client: states pre-created on A, callbacks on B, 4 connections
    #      x 100 streams (each h2load walks its own URL list once) ----
    echo "h2load callbacks: 4 x $H2_CB_N states created on A, then 4 x h2load -i URLS -c 1 -m 100 against B ..."
    local k pids=()
    for k in 1 2 3 4; do
        python3 "$ROOT/tests/bench/callback_urls.py" "$URL_A" "$URL_B" "$H2_CB_N" "$TMP/cb-urls-$k.txt" &
        pids+=($!)
    done
    wait "${pids[@]}" || true
    # one more, answered now: its page is the file h2o serves under the same load (measure_ceiling)
    python3 "$ROOT/tests/bench/callback_urls.py" "$URL_A" "$URL_B" 1 "$TMP/cb-page-url.txt" &&
        curl -sk "$(cat "$TMP/cb-page-url.txt")" >"$TMP/cb-page.html" || rm -f "$TMP/cb-page.html"
    local b0 a0 r0 c0 c1
    b0=$(cpu_of "${RPID[B]}")
    a0=$(cpu_of "${RPID[A]}")
    r0=$(cpu_of "$REDIS_PID")
    children_cpu c0
    run_cb_shape "$TMP/cb-urls" "$TMP/cb-h2load"
    children_cpu c1
    H2_CB_RATE=$CB_SHAPE_RATE
    H2_CB_CPU="relay B $(us_per "$b0" "$(cpu_of "${RPID[B]}")" $((4 * H2_CB_N))), relay A $(us_per "$a0" "$(cpu_of "${RPID[A]}")" $((4 * H2_CB_N))), redis-server $(us_per "$r0" "$(cpu_of "$REDIS_PID")" $((4 * H2_CB_N))), h2load $(us_per "$c0" "$c1" $((4 * H2_CB_N)))"
    H2_CB_OK=$(cat "$TMP"/cb-h2load-?.out | awk '/status codes:/ {s += $3} END {print s + 0}')

    # ---- full flows: create, pickup and delete on A, callback on B ----
    for c in $CONCURRENCY; do
        echo "flow_bench -c $c -d $DURATION (pickup on A, callback on B) ..."
        run_bench "$TMP/flow-$c.out" --url "$URL_A" --callback-url "$URL_B" -c "$c" -d "$DURATION"
        flow_row "full flow, pickup A, callback B" "$TMP/flow-$c.out" flow
    done
    local end_a end_b
    end_a=$(rss_kb "${RPID[A]}")
    end_b=$(rss_kb "${RPID[B]}")

    # ---- the same against one --dev relay with the memory store, for comparison ----
    local mc=${CONCURRENCY%% *}
    if [ "$MEMORY_COMPARE" = 1 ]; then
        RPORT[M]=$(free_port)
        RADMIN[M]=$(free_port)
        RARGS[M]=--dev
        start_relay M
        CHECK="M"
        local URL_M=https://localhost:${RPORT[M]}
        echo "memory store (one --dev relay): flow_bench --callbacks-only -c $mc, then -c $mc ..."
        run_bench "$TMP/mem-cb.out" --url "$URL_M" --callbacks-only -c "$mc" -d "$DURATION" --sessions "$CB_SESSIONS"
        flow_row "memory store: callbacks (303)" "$TMP/mem-cb.out" callbacks
        run_bench "$TMP/mem-flow.out" --url "$URL_M" -c "$mc" -d "$DURATION"
        flow_row "memory store: full flow" "$TMP/mem-flow.out" flow
        stop_relay M
        CHECK="A B"
    fi

    # ---- the h2o ceiling, and the 1.1 start page ----
    measure_ceiling A
    measure_start_page A
    local H2O
    H2O=$(h2load_rps "$TMP/h2o-h2load.out")

    # ---- summary ----
    local cb1=${CB_CONCURRENCY%% *} v r
    echo
    echo "=================================================================================================================="
    echo "authrelay benchmark summary (--redis: redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'), replicas A and B): $(nproc) CPUs, --threads $THREADS per relay and h2o"
    echo "load average at start $LOAD_AT_START, at end $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "=================================================================================================================="
    echo "h2o ceiling: Debian's h2o serving the $H2O_BYTES-byte discovery document from a file over TLS, h2load HTTP/2 -c50 -m10:"
    echo "  ${H2O:-?} req/s. Every 'x h2o' below is the relay's rate divided by this, unless the row names another."
    echo "h2o under the callbacks' own load (their 4 x h2load -i URLS -c 1 -m 100, the relay's $H2O_CB_BYTES-byte page as a file): ${H2O_CB:-?} req/s"
    echo
    printf '  %-62s %14s %8s  %s\n' "" "value" "x h2o" "target"
    v=$(h2load_rps "$TMP/relay-h2load.out")
    printf '  %-62s %14s %8s\n' "raw HTTP: relay A's discovery document, h2load req/s" "$v" "$(ratio "$v" "$H2O")"
    printf '  %-62s %14s %8s\n' "1.1 confirmation page on A (GET /v1/start, h2load -c10), req/s" "${START_RPS:-?}" "$(ratio "$START_RPS" "$H2O")"
    printf '  %-62s %14s\n' "  its mean latency at the client, ms" "${START_MS:-?}"
    v=$(field "$TMP/cb-$cb1.out" create_rate)
    printf '  %-62s %14s %8s\n' "session creation on A (POST /v1/sessions), per s, c=$cb1" "$v" "$(ratio "$v" "$H2O")"
    v=$(field "$TMP/cb-$cb1.out" rate)
    r=$(ratio "$v" "$H2O")
    printf '  %-62s %14s %8s  %s\n' "callbacks on B (verify + atomic store + wake, 303), per s, c=$cb1" "$v" "$r" \
        ">= 0.50 x h2o: $(verdict 'x >= 0.5' "$r")$(flag "$TMP/cb-$cb1.out")"
    r=$(ratio "$H2_CB_RATE" "$H2O")
    printf '  %-62s %14s %8s  %s\n' "callbacks on B driven by h2load (4 conns x 100 streams), per s" "$H2_CB_RATE" "$r" \
        "($H2_CB_OK of $((4 * H2_CB_N)) answered 2xx)"
    r=$(ratio "$H2_CB_RATE" "$H2O_CB")
    printf '  %-62s %14s %8s  %s\n' "  the same against h2o under the same load (${H2O_CB:-?} req/s)" "" "$r" \
        ">= 0.50 x h2o: $(verdict 'x >= 0.5' "$r")"
    echo "    CPU per callback, microseconds: $H2_CB_CPU"
    echo "    CPU per request of h2o under the same load, microseconds: $H2O_CB_CPU"
    for c in $CONCURRENCY; do
        v=$(field "$TMP/flow-$c.out" rate)
        printf '  %-62s %14s %8s  %s\n' "full flows (create A, long-poll A, callback B, delete A)/s, c=$c" "$v" \
            "$(ratio "$v" "$H2O")" "(x4 requests: $(ratio "$(awk -v f="${v:-0}" 'BEGIN {print 4 * f}')" "$H2O") x h2o)$(flag "$TMP/flow-$c.out")"
    done
    if [ "$MEMORY_COMPARE" = 1 ]; then
        v=$(field "$TMP/mem-cb.out" rate)
        printf '  %-62s %14s %8s  %s\n' "memory store, one --dev relay: callbacks per s, c=$mc" "$v" "$(ratio "$v" "$H2O")" \
            "$(flag "$TMP/mem-cb.out")"
        v=$(field "$TMP/mem-flow.out" rate)
        printf '  %-62s %14s %8s  %s\n' "memory store, one --dev relay: full flows per s, c=$mc" "$v" "$(ratio "$v" "$H2O")" \
            "$(flag "$TMP/mem-flow.out")"
    fi
    echo
    echo "  wake latency, $WAKE_N pickups waiting on A, callbacks on B at $WAKE_RATE/s          p50      p99      max (ms)"
    printf '  %-62s %8s %8s %8s  %s\n' "callback's 303 at the client -> pickup's 200 at the client" "$(field "$wake_out" wake_p50)" \
        "$(field "$wake_out" wake_p99)" "$(field "$wake_out" wake_max)" \
        "p99 < 1 ms: $(verdict 'x < 1' "$(field "$wake_out" wake_p99)")$(flag "$wake_out")"
    printf '  %-62s %8s %8s %8s\n' "callback sent -> pickup's 200 (what an instance sees)" "$(field "$wake_out" code_p50)" \
        "$(field "$wake_out" code_p99)" "$(field "$wake_out" code_max)"
    printf '  %-62s %8s %8s\n' "the callback itself (303 on B)" "$(field "$wake_out" cb_p50)" "$(field "$wake_out" cb_p99)"
    printf '  %-62s %8s %8s %8s\n' "flow_bench's own loop pass (the timestamps' resolution)" "$(field "$wake_out" loop_p50)" \
        "$(field "$wake_out" loop_p99)" "$(field "$wake_out" loop_max)"
    echo "  woken with their code: $(field "$wake_out" woken) of $WAKE_N; answered before the 303 arrived: $(field "$wake_out" negative); A's gauge before the callbacks: $(field "$wake_out" waiting) waiting; A's wake counter: +$woken_by_a; errors $(field "$wake_out" errors)"
    echo
    local per
    per=$(awk -v a="$hold_a" -v b="$IDLE_A" -v n="$HOLD_N" 'BEGIN {printf "%.1f", (a - b) / n}')
    echo "  memory (VmRSS), $HOLD_N pickups waiting on A over TLS (HTTP/2, ${conns:-?} connections; A's gauge ${waiting:-?}; errors ${hold_errs:-?})"
    printf '  %-62s %14s %8s  %s\n' "relay A while they wait (idle: $(mb "$IDLE_A"); $per KB/pickup)" "$(mb "$hold_a")" "" \
        "< 150 MB: $(verdict 'x < 150 * 1024' "$([ "$hold_a" -gt 0 ] && echo "$hold_a")")"
    printf '  %-62s %14s\n' "relay B meanwhile (idle: $(mb "$IDLE_B"))" "$(mb "$hold_b")"
    printf '  %-62s %14s\n' "redis-server used_memory meanwhile" "$redis_mem"
    printf '  %-62s %14s\n' "relay A after releasing and deleting them" "$(mb "$after_a")"
    printf '  %-62s %14s\n' "relays A / B after all the flow runs" "$(mb "$end_a") / $(mb "$end_b")"
    echo
    echo "runs (flow_bench, ${DURATION}s each)         $FLOWS_HEADER"
    local row
    for row in "${FLOW_ROWS[@]}"; do
        echo "$row"
    done
    echo
    print_stderr_and_crashes
}

LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "$MODE" = redis ]; then
    redis_main
else
    memory_main
fi
