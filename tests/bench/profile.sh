#!/usr/bin/env bash
# profile.sh: where the CPU of the keep-alive callback path goes, with Redis: a perf call-graph profile of the relay and
# of redis-server while wrk sends callbacks (as tests/bench/run.sh's keep-alive column does), then the top of each
# profile by symbol and by shared object. Loopback only; about a minute.
#
#   BUILD_DIR=build-bench tests/bench/profile.sh [SECONDS]      (default 10; BUILD_DIR must hold authrelay, flow_bench)
#
# Needs perf (Debian: linux-perf, installed if missing) and root or perf_event_paranoid <= 1 for other processes.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
SECS=${1:-10}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
command -v perf >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q linux-perf >/dev/null; }
for tool in wrk redis-server openssl curl; do command -v "$tool" >/dev/null || "$ROOT/deploy/packages.sh" bench; done
[ -x "$BUILD_DIR/authrelay" ] && [ -x "$BUILD_DIR/flow_bench" ] || {
    echo "profile.sh: build authrelay and flow_bench in $BUILD_DIR first (tests/bench/run.sh does)" >&2
    exit 2
}

TMP=$(mktemp -d /tmp/authrelay-profile.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

rport=$(port)
redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no --dir "$TMP" >"$TMP/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/key.pem" -out "$TMP/cert.pem" \
    -days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1
"$BUILD_DIR/authrelay" keygen "$TMP/keys.json" >/dev/null
pport=$(port)
aport=$(port)
"$BUILD_DIR/authrelay" serve --tls-cert "$TMP/cert.pem" --tls-key "$TMP/key.pem" --keys "$TMP/keys.json" \
    --listen "127.0.0.1:$pport" --admin-listen "127.0.0.1:$aport" --public-url "https://localhost:$pport" \
    --redis "redis://127.0.0.1:$rport" --rate-limit 0 --sessions-max 2000000 --allow-unbound --threads "$THREADS" \
    >"$TMP/relay.log" 2>&1 &
relay_pid=$!
pids+=("$relay_pid")
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$aport/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

n=$((40000 * SECS))
echo "creating $n sessions ..."
"$BUILD_DIR/flow_bench" --url "https://localhost:$pport" --http1 --callbacks-only -c "$CONNS" --sessions "$n" --ttl 600 \
    --code-len 1024 --urls "$TMP/paths.txt" >"$TMP/create.out" 2>&1
sleep 2 # Redis settles (its key table grows after a burst of writes)

echo "profiling relay (pid $relay_pid) and redis-server (pid $redis_pid) for $SECS s under wrk -c$CONNS ..."
wrk -t1 -c"$CONNS" -d"$((SECS + 2))s" --timeout 10s -s "$ROOT/tests/bench/callbacks.lua" "https://127.0.0.1:$pport" \
    -- "$TMP/paths.txt" 1 >"$TMP/wrk.out" 2>&1 &
wrk_pid=$!
sleep 1
perf record -q -g -F 999 -o "$TMP/relay.data" -p "$relay_pid" -- sleep "$SECS" 2>/dev/null &
perf record -q -g -F 999 -o "$TMP/redis.data" -p "$redis_pid" -- sleep "$SECS" 2>/dev/null
wait %perf 2>/dev/null || true
wait "$wrk_pid" || true
grep -E "Requests/sec|requests in|Non-2xx" "$TMP/wrk.out" || true
redis-cli -p "$rport" info commandstats | grep -E "evalsha|hmget|publish" || true

# each report goes to a file first: head closing a pipe early would end perf with SIGPIPE, and this script with it
for who in relay redis; do
    perf report -q -i "$TMP/$who.data" --no-children --sort dso --stdio -g none >"$TMP/$who-dso.txt" 2>/dev/null
    perf report -q -i "$TMP/$who.data" --no-children --sort dso,symbol --stdio -g none >"$TMP/$who-sym.txt" 2>/dev/null
    perf report -q -i "$TMP/$who.data" --children --sort symbol --stdio -g caller,0.5,3,callee --percent-limit 3 \
        >"$TMP/$who-graph.txt" 2>/dev/null
    echo
    echo "==== $who: by shared object (share of samples) ===="
    awk 'NF && ++n <= 12' "$TMP/$who-dso.txt"
    echo "==== $who: hottest symbols, self time ===="
    awk 'NF && ++n <= 25' "$TMP/$who-sym.txt"
    echo "==== $who: call graph of the hottest paths (with children, >= 3 %) ===="
    awk 'NF && ++n <= 60' "$TMP/$who-graph.txt"
done
if [ -n "${PROFILE_KEEP:-}" ]; then
    mkdir -p "$PROFILE_KEEP" && cp "$TMP"/*.data "$TMP"/*.txt "$PROFILE_KEEP"/ && echo "perf data kept in $PROFILE_KEEP"
fi
