#!/usr/bin/env bash
# run.sh: one run, one table: the callback path of authrelay (memory store, and Redis) next to Debian's h2o serving a
# static file over TLS, one after the other in the same run; tests/bench/README.md says what every figure means
#
#   BUILD_DIR=/path/to/build tests/bench/run.sh
#
# Targets, in this order (each on its own, the others idle or stopped):
#   h2o     Debian's h2o, THREADS threads, TLS with its own session tickets, a file of the size of the relay's
#           callback answer at /qorus-oauth2-redirect (h2o ignores the query string)
#   memory  one relay, the memory store
#   redis   one relay on one redis-server (one replica: every callback, pickup and wake goes through Redis's
#           EVALSHA and PUBLISH all the same, and the table compares one process with one process)
# Columns: keep-alive callbacks/s (wrk, HTTP/1.1 over TLS, CONNS connections, each request a distinct pre-created
# session's callback); new-connection callbacks/s (the same with "Connection: close": a full TLS handshake each);
# resumed-handshake callbacks/s (resume_bench: each new connection resumes its thread's newest TLS session) and full
# ones with the same client; full flows/s (flow_bench: create, long-poll, callback, delete); RSS per idle TLS long-poll
# with HOLD_N separate TLS connections, HTTP/1.1 and HTTP/2 (hold_conns); CPU per keep-alive callback of every process
# (/proc/PID/stat) and Redis's INFO commandstats; wake latency with WAKE_N waiting pickups; the targets met / not met.
# About 4 to 8 minutes on 2 cores (the sessions made for the keep-alive runs grow with h2o's rate). Everything
# on 127.0.0.1; the relays run with --rate-limit 0 --sessions-max 2000000.
#
# Knobs (environment): BUILD_DIR (default: a Release tree in build-bench), THREADS (2: relay and h2o worker threads),
#   CONNS (64), WRK_THREADS (1), KA_SECS (6), NC_SECS (5), RS_SECS (5), RS_THREADS (4), FLOW_SECS (5), FLOW_C (50),
#   HOLD_N (10000), WAKE_N (1000), WAKE_RATE (500), CODE_LEN (1024: the authorization code's length),
#   TARGETS ("h2o memory redis"), KA_SESSIONS_MAX (600000: cap on the sessions made for one keep-alive run)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
case ${1:-} in
-h | --help)
    sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 0
    ;;
"") ;;
*)
    echo "run.sh: no arguments (knobs are environment variables; --help)" >&2
    exit 2
    ;;
esac
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
WRK_THREADS=${WRK_THREADS:-1}
KA_SECS=${KA_SECS:-6}
NC_SECS=${NC_SECS:-5}
RS_SECS=${RS_SECS:-5}
RS_THREADS=${RS_THREADS:-4}
FLOW_SECS=${FLOW_SECS:-5}
FLOW_C=${FLOW_C:-50}
HOLD_N=${HOLD_N:-10000}
WAKE_N=${WAKE_N:-1000}
WAKE_RATE=${WAKE_RATE:-500}
CODE_LEN=${CODE_LEN:-1024}
TARGETS=${TARGETS:-"h2o memory redis"}
KA_SESSIONS_MAX=${KA_SESSIONS_MAX:-600000}
[ "$KA_SECS" -ge 3 ] || KA_SECS=3

die() {
    echo "run.sh: $*" >&2
    exit 1
}
note() { echo "run.sh: $*"; }

# ---- tools: installed the way the rest of the repository installs packages ----
missing=
for tool in wrk h2o openssl curl redis-server redis-cli cmake; do
    command -v "$tool" >/dev/null || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    note "missing:$missing; installing the bench packages (deploy/packages.sh bench)"
    "$ROOT/deploy/packages.sh" bench || die "deploy/packages.sh bench failed"
fi

# ---- build: the relay and the bench tools (hold_conns when its source exists) ----
if [ -z "${BUILD_DIR:-}" ]; then
    BUILD_DIR=$ROOT/build-bench
    [ -f "$BUILD_DIR/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null ||
        die "cmake configure failed"
fi
# configured again: a tree made before a bench tool was added knows no target for it
cmake -S "$ROOT" -B "$BUILD_DIR" >/dev/null || die "cmake configure failed in $BUILD_DIR"
BUILD_LOG=${TMPDIR:-/tmp}/authrelay-bench-build.$$.log
cmake --build "$BUILD_DIR" -j2 --target authrelay flow_bench resume_bench >"$BUILD_LOG" 2>&1 ||
    die "build failed in $BUILD_DIR: $(tail -20 "$BUILD_LOG")"
RELAY_BIN=$BUILD_DIR/authrelay
FLOW_BIN=$BUILD_DIR/flow_bench
RESUME_BIN=$BUILD_DIR/resume_bench
HOLD_BIN=
HOLD_SKIP="tests/bench/hold_conns.c is not in this tree yet"
if [ -f "$ROOT/tests/bench/hold_conns.c" ]; then
    if cmake --build "$BUILD_DIR" -j2 --target hold_conns >>"$BUILD_LOG" 2>&1 && [ -x "$BUILD_DIR/hold_conns" ]; then
        HOLD_BIN=$BUILD_DIR/hold_conns
        HOLD_SKIP=
    else
        HOLD_SKIP="hold_conns did not build (no CMake target yet?): see $BUILD_LOG"
    fi
fi
[ -z "$HOLD_SKIP" ] && rm -f "$BUILD_LOG"

# ---- processes this script starts, and only those, are stopped on exit ----
TMP=$(mktemp -d /tmp/authrelay-bench.XXXXXX)
declare -A PID=()
LOADGEN_PID=
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
cleanup() { # shellcheck disable=SC2317 # (run by the trap)
    stop_pid "$LOADGEN_PID"
    local name
    for name in "${!PID[@]}"; do
        stop_pid "${PID[$name]}"
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# thousands of connections need descriptors on both sides
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

free_port() {
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 12000)) # below the ephemeral ports (32768-), which thousands of client sockets take
        ss -ltnH 2>/dev/null | awk '{print $4}' | grep -q ":$p\$" && continue
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
        echo "$p"
        return 0
    done
    die "no free port"
}
# key=value of a RESULT line
field() { sed -n 's/^RESULT .*[ ]'"$2"'=\([^ ]*\).*/\1/p' "$1" 2>/dev/null | head -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" || a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b}'; }
num() { awk -v v="$1" 'BEGIN {if (v == "" || v == "-") print "-"; else printf "%.0f", v}'; } # a rate, rounded
verdict() {                                                                                 # awk condition on x, value
    if [ -z "$2" ] || [ "$2" = - ]; then
        echo "n/a"
        return
    fi
    awk -v x="$2" "BEGIN {print ($1) ? \"met\" : \"NOT MET\"}"
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; } # CPU of a process, clock ticks
HZ=$(getconf CLK_TCK)

# ---- shared material: one certificate (localhost, P-256) and one key file for every server ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >/dev/null 2>&1 ||
    die "openssl req failed"
"$RELAY_BIN" keygen "$TMP/keys.json" >/dev/null || die "authrelay keygen failed"
chmod 600 "$TMP/keys.json"

# ---- servers ----
declare -A PORT=() ADMIN=() ARGS=() LABEL=() CRASHED=()
LABEL[h2o]="h2o static, $THREADS threads"
LABEL[memory]="authrelay, memory store"
LABEL[redis]="authrelay, Redis (one replica)"
REDIS_PORT=
start_redis() {
    REDIS_PORT=$(free_port)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" >"$TMP/redis.log" 2>&1 </dev/null &
    PID[redis-server]=$!
    for _ in $(seq 1 100); do
        [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && return 0
        sleep 0.1
    done
    die "redis-server did not come up: $(cat "$TMP/redis.log")"
}
start_relay() { # memory | redis
    local name=$1
    [ -n "${PORT[$name]:-}" ] || PORT[$name]=$(free_port)
    [ -n "${ADMIN[$name]:-}" ] || ADMIN[$name]=$(free_port)
    # shellcheck disable=SC2086
    "$RELAY_BIN" serve --tls-cert "$TMP/cert.pem" --tls-key "$TMP/key.pem" --keys "$TMP/keys.json" \
        --listen "127.0.0.1:${PORT[$name]}" --admin-listen "127.0.0.1:${ADMIN[$name]}" --public-url "https://localhost:${PORT[$name]}" \
        --rate-limit 0 --sessions-max 2000000 --allow-unbound --threads "$THREADS" ${ARGS[$name]:-} \
        >"$TMP/relay-$name.log" 2>>"$TMP/relay-$name.err" </dev/null &
    PID[$name]=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:${ADMIN[$name]}/readyz" >/dev/null 2>&1 && return 0
        kill -0 "${PID[$name]}" 2>/dev/null || break
        sleep 0.1
    done
    die "relay $name did not become ready: $(tail -5 "$TMP/relay-$name.err")"
}
# after each phase: a relay that died is reported and restarted, so that the remaining figures still come
alive() { # name phase
    local name=$1 rc
    [ "$name" = h2o ] && return 0
    kill -0 "${PID[$name]}" 2>/dev/null && return 0
    wait "${PID[$name]}"
    rc=$?
    CRASHED[$name]="${CRASHED[$name]:-}${CRASHED[$name]:+; }died during $2 (exit status $rc$([ "$rc" -gt 128 ] && echo ", signal $((rc - 128))"); stderr: $(grep -v '^$' "$TMP/relay-$name.err" | tail -1 | cut -c1-120))"
    note "relay $name died during $2 (exit status $rc); restarting it"
    start_relay "$name"
}
start_h2o() {
    PORT[h2o]=$(free_port)
    mkdir -p "$TMP/www"
    cp "$TMP/page" "$TMP/www/qorus-oauth2-redirect"
    chmod -R a+rX "$TMP/www"
    chmod a+r "$TMP/cert.pem" "$TMP/key.pem"
    chmod a+x "$TMP"
    {
        [ "$(id -u)" = 0 ] && echo "user: root"
        echo "num-threads: $THREADS"
        echo "ssl-session-resumption:"
        echo "  mode: ticket" # TLS 1.3 (and 1.2) tickets under h2o's own rotating keys
        echo "listen:"
        echo "  host: 127.0.0.1"
        echo "  port: ${PORT[h2o]}"
        echo "  ssl:"
        echo "    certificate-file: $TMP/cert.pem"
        echo "    key-file: $TMP/key.pem"
        echo "hosts:"
        echo "  default:"
        echo "    paths:"
        echo "      /:"
        echo "        file.dir: $TMP/www"
    } >"$TMP/h2o.conf"
    h2o -c "$TMP/h2o.conf" >"$TMP/h2o.log" 2>&1 </dev/null &
    PID[h2o]=$!
    for _ in $(seq 1 100); do
        curl -skf "https://127.0.0.1:${PORT[h2o]}/qorus-oauth2-redirect" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "h2o did not come up: $(cat "$TMP/h2o.log")"
}
stop_target() { # name
    stop_pid "${PID[$1]}"
    unset "PID[$1]"
}

# ---- measurements; each writes $TMP/<target>-<what>.out ----
# the processes whose CPU is counted over a keep-alive run, per target
procs_of() { # target
    case $1 in
    h2o) echo "h2o" ;;
    memory) echo "memory" ;;
    redis) echo "redis redis-server" ;;
    esac
}
# wrk with callbacks.lua over PATHS. With CPU=1, the CPU of the target's processes (and Redis's commandstats) is read
# just before wrk starts and just after it ends, and divided by the callbacks answered (wrk's count: exact); wrk's own
# CPU is read 1 s after its start (past reading and formatting the paths) and 0.3 s before its end, and divided by its
# average rate times that window
declare -A CPU_US=() CMDSTATS=()
run_wrk() { # target what secs paths cpu [extra wrk args...]
    local t=$1 what=$2 secs=$3 paths=$4 cpu=$5 out=$TMP/$1-$2.out p w0 w1 s0 s1 n
    shift 5
    declare -A t0=() t1=()
    if [ "$cpu" = 1 ]; then
        for p in $(procs_of "$t"); do t0[$p]=$(ticks "${PID[$p]}"); done
        [ "$t" = redis ] && redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
    fi
    wrk -t"$WRK_THREADS" -c"$CONNS" -d"${secs}s" --timeout 10s -s "$ROOT/tests/bench/callbacks.lua" "$@" \
        "https://127.0.0.1:${PORT[$t]}" -- "$paths" "$WRK_THREADS" >"$out" 2>&1 &
    LOADGEN_PID=$!
    if [ "$cpu" = 1 ]; then
        sleep 1
        w0=$(ticks "$LOADGEN_PID")
        s0=$(date +%s.%N)
        sleep "$(awk -v s="$secs" 'BEGIN {print s - 1.3}')"
        w1=$(ticks "$LOADGEN_PID")
        s1=$(date +%s.%N)
    fi
    wait "$LOADGEN_PID"
    LOADGEN_PID=
    if [ "$cpu" = 1 ]; then
        for p in $(procs_of "$t"); do t1[$p]=$(ticks "${PID[$p]}"); done
        [ "$t" = redis ] && redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' >"$TMP/commandstats"
        n=$(wrk_good "$out")
        for p in $(procs_of "$t"); do
            CPU_US[$t.$p]=$(awk -v a="${t0[$p]}" -v b="${t1[$p]}" -v n="$n" -v hz="$HZ" 'BEGIN {if (n > 0) printf "%.1f", (b - a) / hz * 1e6 / n; else print "-"}')
        done
        CPU_US[$t.wrk]=$(awk -v a="$w0" -v b="$w1" -v r="$(wrk_rate "$out")" -v s="$s0" -v e="$s1" -v hz="$HZ" \
            'BEGIN {n = r * (e - s); if (n > 0) printf "%.1f", (b - a) / hz * 1e6 / n; else print "-"}')
        if [ "$t" = redis ]; then
            # cmdstat_evalsha:calls=N,usec=U,usec_per_call=X,...: each command's time per call and calls per callback
            CMDSTATS[$t]=$(awk -F'[:,=]' -v n="$n" '/^cmdstat_/ && n > 0 {sub(/^cmdstat_/, "", $1); if ($3 / n >= 0.05) {printf "%s%s %.2f us/call x %.2f/callback", sep, $1, $7, $3 / n; sep = "; "}}' "$TMP/commandstats")
            CPU_US[$t.evalsha]=$(awk -F'[:,=]' -v n="$n" '$1 == "cmdstat_evalsha" && n > 0 {printf "%.1f", $5 / n}' "$TMP/commandstats")
        fi
    fi
    sed 's/^/    /' "$out"
    alive "$t" "wrk $what"
}
# good answers (2xx/3xx): wrk's requests less "Non-2xx or 3xx"
wrk_good() { awk '/ requests in / {n = $1} /Non-2xx or 3xx responses:/ {bad = $NF} END {print n - bad}' "$1"; }
# good answers (2xx/3xx) per second: wrk's requests less "Non-2xx or 3xx", over wrk's own run time
wrk_rate() {
    awk '/ requests in / {n = $1; t = $4; if (t ~ /ms$/) t = t / 1000; else if (t ~ /m$/) t = t * 60; else t = t + 0}
         /Non-2xx or 3xx responses:/ {bad = $NF}
         END {if (t > 0) printf "%.1f", (n - bad) / t}' "$1"
}
wrk_errors() {
    awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' "$1"
}
# "(ran out of sessions)" when the keep-alive run used more paths than it had
wrk_ran_out() { awk '/^CALLBACKS / {split($2, u, "="); split($3, h, "="); if (u[2] + 0 > h[2] + 0) print " (RAN OUT of sessions: rate low)"}' "$1"; }

run_resume() { # target what(resumed|full) secs paths
    local t=$1 out=$TMP/$1-$2.out full=()
    [ "$2" = full ] && full=(--full)
    "$RESUME_BIN" --port "${PORT[$t]}" --paths "$4" --threads "$RS_THREADS" -d "$3" "${full[@]}" >"$out" 2>&1 &
    LOADGEN_PID=$!
    wait "$LOADGEN_PID"
    LOADGEN_PID=
    sed 's/^/    /' "$out"
    alive "$t" "resume_bench $2"
}
run_flow() { # target what flow_bench-args...
    local t=$1 out=$TMP/$1-$2.out
    shift 2
    "$FLOW_BIN" --url "https://localhost:${PORT[$t]}" "$@" >"$out" 2>&1 &
    LOADGEN_PID=$!
    wait "$LOADGEN_PID"
    LOADGEN_PID=
    sed 's/^/    /' "$out"
    alive "$t" "flow_bench $*"
}
run_hold() { # target proto
    local t=$1 out=$TMP/$1-hold-$2.out
    if [ -n "$HOLD_SKIP" ]; then
        echo "RSS per idle TLS long-poll ($2): skipped: $HOLD_SKIP" >"$out"
    else
        "$HOLD_BIN" --port "${PORT[$t]}" --pid "${PID[$t]}" --admin-port "${ADMIN[$t]}" --proto "$2" --conns "$HOLD_N" \
            >"$out" 2>&1 &
        LOADGEN_PID=$!
        wait "$LOADGEN_PID"
        LOADGEN_PID=
    fi
    sed 's/^/    /' "$out"
    alive "$t" "hold_conns $2"
}
# resume_bench's failed connections and answers other than 2xx/3xx ("?" without a result)
failed() { awk '/^RESULT resume_bench/ {for (i = 1; i <= NF; ++i) if ($i ~ /^(errors|bad_status)=/) {split($i, kv, "="); n += kv[2]}; seen = 1} END {print seen ? n + 0 : "?"}' "$1" 2>/dev/null; }
# hold_conns: pickups held when RSS was read, of those sent, and its errors
held() { # target
    local p
    for p in h1 h2; do
        grep -q '^RESULT hold_conns' "$TMP/$1-hold-$p.out" 2>/dev/null || continue
        echo -n ", long-polls $p held $(sed -n 's/^RESULT hold_conns .* held=\([^ ]*\).*/\1/p' "$TMP/$1-hold-$p.out")/$HOLD_N errors $(sed -n 's/^RESULT hold_conns .* errors=\([^ ]*\).*/\1/p' "$TMP/$1-hold-$p.out")"
    done
}
hold_kib() { sed -n 's/^RESULT hold_conns .*per_conn_kib=\([^ ]*\).*/\1/p' "$1" 2>/dev/null | head -1; }

# sessions for one target: pre-created over HTTP/1.1 (HTTP/2 connections end after 10,000 streams), their callback
# paths split into one file per run
make_paths() { # target
    local t=$1 ka nc rs total
    ka=$(awk -v r="${H2O_KA:-0}" -v s="$KA_SECS" -v m="$KA_SESSIONS_MAX" 'BEGIN {n = int(r * s) + 5000; if (r == 0) n = 60000 * s; if (n > m) n = m; print n}')
    nc=$(awk -v r="${H2O_NC:-0}" -v s="$NC_SECS" 'BEGIN {n = int(r * s * 1.5) + 2000; if (r == 0) n = 5000 * s; print n}')
    rs=$(awk -v a="${H2O_RS:-0}" -v b="${H2O_FULL:-0}" -v s="$RS_SECS" 'BEGIN {r = a > b ? a : b; n = int(r * s * 1.5) + 2000; if (r == 0) n = 5000 * s; print n}')
    total=$((ka + nc + 2 * rs))
    echo "$t: creating $total sessions (flow_bench --callbacks-only --urls, HTTP/1.1, c=$CONNS) ..."
    run_flow "$t" create --http1 --callbacks-only -c "$CONNS" --sessions "$total" --ttl 600 --code-len "$CODE_LEN" \
        --urls "$TMP/$t-paths.txt"
    sed -n "1,${ka}p" "$TMP/$t-paths.txt" >"$TMP/$t-ka.txt"
    sed -n "$((ka + 1)),$((ka + nc))p" "$TMP/$t-paths.txt" >"$TMP/$t-nc.txt"
    sed -n "$((ka + nc + 1)),$((ka + nc + rs))p" "$TMP/$t-paths.txt" >"$TMP/$t-rs.txt"
    sed -n "$((ka + nc + rs + 1)),\$p" "$TMP/$t-paths.txt" >"$TMP/$t-full.txt"
    rm -f "$TMP/$t-paths.txt"
}

measure() { # target
    local t=$1
    echo
    echo "==== ${LABEL[$t]} ===="
    if [ "$t" != h2o ]; then
        if [ -n "$HOLD_SKIP" ]; then
            note "RSS per idle TLS long-poll: skipped: $HOLD_SKIP"
        else
            echo "$t: $HOLD_N idle TLS long-polls, HTTP/1.1, then HTTP/2 (hold_conns) ..."
        fi
        # each from a fresh process: a relay seldom gives freed memory back, and a second reading would reuse it
        local proto
        for proto in h1 h2; do
            if [ -z "$HOLD_SKIP" ]; then
                stop_target "$t"
                start_relay "$t"
            fi
            run_hold "$t" "$proto"
        done
        make_paths "$t"
    fi
    local p=$TMP/$t
    echo "$t: keep-alive callbacks, wrk -t$WRK_THREADS -c$CONNS -d${KA_SECS}s ..."
    run_wrk "$t" ka "$KA_SECS" "$p-ka.txt" 1
    echo "$t: new-connection callbacks (Connection: close), wrk -t$WRK_THREADS -c$CONNS -d${NC_SECS}s ..."
    run_wrk "$t" nc "$NC_SECS" "$p-nc.txt" 0 -H "Connection: close"
    echo "$t: resumed and full handshakes, resume_bench --threads $RS_THREADS -d $RS_SECS ..."
    run_resume "$t" resumed "$RS_SECS" "$p-rs.txt"
    run_resume "$t" full "$RS_SECS" "$p-full.txt"
    if [ "$t" != h2o ]; then
        echo "$t: full flows, flow_bench -c $FLOW_C -d $FLOW_SECS (HTTP/2, 2 streams a connection) ..."
        run_flow "$t" flow -c "$FLOW_C" -d "$FLOW_SECS" --streams 2 --code-len "$CODE_LEN"
        echo "$t: wake latency, flow_bench --wake $WAKE_N --wake-rate $WAKE_RATE ..."
        # at most 16 requests of one HTTP/2 connection run at once (the rest wait): 10 pickups a connection, and
        # room for the callbacks' own connections
        run_flow "$t" wake --admin-url "http://127.0.0.1:${ADMIN[$t]}" --wake "$WAKE_N" --wake-rate "$WAKE_RATE" \
            --streams 10 --connections $((WAKE_N / 10 + 20)) --code-len "$CODE_LEN"
    fi
}

LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)
note "$(nproc) CPUs, load average $LOAD_AT_START; build $BUILD_DIR; scratch $TMP"
for t in $TARGETS; do
    case $t in h2o | memory | redis) ;; *) die "unknown target $t in TARGETS (h2o memory redis)" ;; esac
done

# the relay's callback answer (a 303 to the session's return_uri, empty body), whose body size h2o's file gets
start_relay memory
"$FLOW_BIN" --url "https://localhost:${PORT[memory]}" --http1 --callbacks-only -c 1 --sessions 1 --ttl 600 \
    --code-len "$CODE_LEN" --urls "$TMP/one.txt" >"$TMP/one.out" 2>&1 || die "flow_bench --urls failed: $(cat "$TMP/one.out")"
PAGE_STATUS=$(curl -sk -o "$TMP/page" -w '%{http_code}' "https://127.0.0.1:${PORT[memory]}$(head -1 "$TMP/one.txt")")
PAGE_BYTES=$(wc -c <"$TMP/page")
[ "$PAGE_STATUS" = 303 ] || note "the relay answered a callback with $PAGE_STATUS, not 303"
# h2o's paths: the same shape as the relay's (a code, a state); wrk sends its 1,000 again and again, resume_bench
# sends each line once, so it gets 5,000 a second of its run
h2o_paths() { # count file
    awk -v n="$1" -v line="$(head -1 "$TMP/one.txt")" 'BEGIN {for (i = 0; i < n; ++i) {x = line; sub(/code=eyJ/, sprintf("code=%06d", i), x); print x}}' >"$2"
}
h2o_paths 1000 "$TMP/h2o-ka.txt"
cp "$TMP/h2o-ka.txt" "$TMP/h2o-nc.txt"
h2o_paths $((RS_SECS * 5000)) "$TMP/h2o-rs.txt"
cp "$TMP/h2o-rs.txt" "$TMP/h2o-full.txt"
case " $TARGETS " in *" memory "*) ;; *) stop_target memory ;; esac

H2O_KA='' H2O_NC='' H2O_RS='' H2O_FULL=
if [[ " $TARGETS " == *" h2o "* ]]; then
    start_h2o
    measure h2o
    stop_target h2o
    H2O_KA=$(wrk_rate "$TMP/h2o-ka.out")
    H2O_NC=$(wrk_rate "$TMP/h2o-nc.out")
    H2O_RS=$(field "$TMP/h2o-resumed.out" rate)
    H2O_FULL=$(field "$TMP/h2o-full.out" rate)
fi
if [[ " $TARGETS " == *" memory "* ]]; then
    measure memory
    stop_target memory
fi
if [[ " $TARGETS " == *" redis "* ]]; then
    start_redis
    ARGS[redis]="--redis redis://127.0.0.1:$REDIS_PORT"
    start_relay redis
    measure redis
    stop_target redis
fi

# =====================================================================================================================
# the table
# =====================================================================================================================
row() { # target: the table's cells, tab-separated
    local t=$1 ka nc rs fl h1 h2
    ka=$(wrk_rate "$TMP/$t-ka.out")
    nc=$(wrk_rate "$TMP/$t-nc.out")
    rs=$(field "$TMP/$t-resumed.out" rate)
    fl=$(field "$TMP/$t-flow.out" rate)
    h1=$(hold_kib "$TMP/$t-hold-h1.out")
    h2=$(hold_kib "$TMP/$t-hold-h2.out")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${LABEL[$t]}" "$(num "$ka")" "$(ratio "$ka" "$H2O_KA")" "$(num "$nc")" \
        "$(ratio "$nc" "$H2O_NC")" "$(num "$rs")" "$(ratio "$rs" "$H2O_RS")" "$(num "$fl")" \
        "${h1:--}$([ -n "$h1" ] && echo " KiB")" "${h2:--}$([ -n "$h2" ] && echo " KiB")"
}
ran() { [ -s "$TMP/$1-ka.out" ]; }
{
    echo
    echo "======================================================================================================================"
    echo "authrelay benchmark: $(nproc) CPUs, --threads $THREADS (relays and h2o), load average at start $LOAD_AT_START, at end $(cut -d' ' -f1-3 /proc/loadavg); $(($(date +%s) - T_START)) s"
    echo "callbacks: TLS HTTP/1.1, wrk -t$WRK_THREADS -c$CONNS, each request a distinct pre-created session's callback (code $CODE_LEN bytes);"
    echo "the relay answers 303 with a ${PAGE_BYTES}-byte body; h2o serves a ${PAGE_BYTES}-byte file at the same path"
    echo "======================================================================================================================"
    printf '%-32s %11s %6s %10s %6s %10s %6s %8s %12s %12s\n' "target" "keep-alive/s" "x h2o" "new-conn/s" "x h2o" \
        "resumed/s" "x h2o" "flows/s" "RSS/poll h1" "RSS/poll h2"
    for t in $TARGETS; do
        ran "$t" || continue
        row "$t" | awk -F'\t' '{printf "%-32s %11s %6s %10s %6s %10s %6s %8s %12s %12s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10}'
    done
    [ -n "$HOLD_SKIP" ] && echo "  RSS per idle TLS long-poll: skipped: $HOLD_SKIP"
    echo
    echo "errors per run (wrk: non-2xx/3xx answers and socket errors; resume_bench, flow_bench: failed requests):"
    for t in $TARGETS; do
        ran "$t" || continue
        printf '  %-32s keep-alive %s%s, new-connection %s, resumed %s, full handshakes %s%s\n' "${LABEL[$t]}" \
            "$(wrk_errors "$TMP/$t-ka.out")" "$([ "$t" != h2o ] && wrk_ran_out "$TMP/$t-ka.out")" "$(wrk_errors "$TMP/$t-nc.out")" \
            "$(failed "$TMP/$t-resumed.out")" "$(failed "$TMP/$t-full.out")" \
            "$([ "$t" != h2o ] && echo ", full flows $(field "$TMP/$t-flow.out" errors), wake $(field "$TMP/$t-wake.out" errors)$(held "$t")")"
    done
    echo
    echo "TLS handshakes (resume_bench, $RS_THREADS threads, one Connection: close callback a connection)   full/s  resumed/s  resumed  resumed/full"
    for t in $TARGETS; do
        ran "$t" || continue
        printf '  %-86s %8s %10s %8s %13s\n' "${LABEL[$t]}" "$(num "$(field "$TMP/$t-full.out" rate)")" \
            "$(num "$(field "$TMP/$t-resumed.out" rate)")" \
            "$(field "$TMP/$t-resumed.out" resumed)/$(field "$TMP/$t-resumed.out" conns)" \
            "$(ratio "$(field "$TMP/$t-resumed.out" rate)" "$(field "$TMP/$t-full.out" rate)")"
    done
    echo
    echo "CPU per keep-alive callback, microseconds (/proc/PID/stat over the run / callbacks answered; wrk: 1 s after its start to 0.3 s before its end):"
    for t in $TARGETS; do
        ran "$t" || continue
        case $t in
        h2o) echo "  ${LABEL[$t]}: h2o ${CPU_US[h2o.h2o]:-?}, wrk ${CPU_US[h2o.wrk]:-?}" ;;
        memory) echo "  ${LABEL[$t]}: relay ${CPU_US[memory.memory]:-?}, wrk ${CPU_US[memory.wrk]:-?}" ;;
        redis)
            echo "  ${LABEL[$t]}: relay ${CPU_US[redis.redis]:-?}, redis-server ${CPU_US[redis.redis-server]:-?}, wrk ${CPU_US[redis.wrk]:-?}"
            echo "    Redis INFO commandstats over the same window: ${CMDSTATS[redis]:-?}"
            echo "    (a script's own commands are counted inside its EVALSHA's time too)"
            ;;
        esac
    done
    echo
    echo "full flows (flow_bench -c $FLOW_C, HTTP/2): flows/s, flow p50/p99 ms; wake: $WAKE_N pickups waiting, callbacks at $WAKE_RATE/s"
    echo "                                     flows/s  flow p50/p99 ms   callback sent->code p50/p99 ms   303->code p50/p99 ms   woken"
    for t in memory redis; do
        ran "$t" || continue
        printf '  %-32s %10s %8s/%-8s %15s/%-15s %10s/%-10s %8s\n' "${LABEL[$t]}" "$(num "$(field "$TMP/$t-flow.out" rate)")" \
            "$(field "$TMP/$t-flow.out" flow_p50)" "$(field "$TMP/$t-flow.out" flow_p99)" \
            "$(field "$TMP/$t-wake.out" code_p50)" "$(field "$TMP/$t-wake.out" code_p99)" \
            "$(field "$TMP/$t-wake.out" wake_p50)" "$(field "$TMP/$t-wake.out" wake_p99)" \
            "$(field "$TMP/$t-wake.out" woken)/$WAKE_N"
    done
    echo
    echo "targets (issue 13):"
    for t in memory redis; do
        ran "$t" || continue
        for proto in h1 h2; do
            v=$(hold_kib "$TMP/$t-hold-$proto.out")
            printf '  %-70s %12s  %s\n' "${LABEL[$t]}: RSS per idle TLS long-poll ($proto) <= 16 KiB" "${v:--}" \
                "$(if [ -n "$HOLD_SKIP" ]; then echo "skipped"; else verdict 'x <= 16' "$v"; fi)"
        done
    done
    if ran redis; then
        v=${CPU_US[redis.redis-server]:-}
        printf '  %-70s %12s  %s\n' "Redis CPU per callback <= 4 us (redis-server process)" "${v:--}" "$(verdict 'x <= 4' "$v")"
        printf '  %-70s %12s\n' "  (its EVALSHA time per callback, INFO commandstats)" "${CPU_US[redis.evalsha]:--}"
        v=$(ratio "$(wrk_rate "$TMP/redis-ka.out")" "$H2O_KA")
        printf '  %-70s %12s  %s\n' "keep-alive callbacks with Redis >= 0.5 x h2o" "$v" "$(verdict 'x >= 0.5' "$v")"
        if ran memory; then
            for q in p50 p99; do
                a=$(field "$TMP/redis-wake.out" "code_$q")
                b=$(field "$TMP/memory-wake.out" "code_$q")
                v=$(ratio "$a" "$b")
                printf '  %-70s %12s  %s\n' "wake latency $q with Redis <= 2 x the memory store's (${a:-?} / ${b:-?} ms)" "$v" "$(verdict 'x <= 2' "$v")"
            done
        fi
    fi
    for t in $TARGETS; do
        ran "$t" || continue
        r=$(field "$TMP/$t-resumed.out" resumed)
        n=$(field "$TMP/$t-resumed.out" conns)
        v=$(ratio "$(field "$TMP/$t-resumed.out" rate)" "$(field "$TMP/$t-full.out" rate)")
        printf '  %-70s %12s  %s\n' "${LABEL[$t]}: resumed handshakes/s vs full (resumed $r of $n)" "$v" \
            "$(if [ "${r:-0}" = 0 ]; then echo "NO RESUMPTION"; else verdict 'x > 1' "$v"; fi)"
    done
    echo
    echo "README table (provisional figures):"
    echo "| target | keep-alive callbacks/s | x h2o | new-connection callbacks/s | x h2o | resumed callbacks/s | x h2o | full flows/s | RSS per idle TLS long-poll (h1 / h2) |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for t in $TARGETS; do
        ran "$t" || continue
        row "$t" | awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s / %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10}'
    done
    echo
    for t in memory redis; do
        [ -n "${CRASHED[$t]:-}" ] && echo "RELAY CRASH ($t): ${CRASHED[$t]}"
        if [ -s "$TMP/relay-$t.err" ]; then
            echo "relay $t stderr (first lines):"
            head -5 "$TMP/relay-$t.err"
        fi
    done
} | tee "$TMP/summary"
exit 0
