#!/usr/bin/env bash
# container-test.sh: builds the Dockerfile and tests the image on a machine with no Docker engine (as root):
#   1. a debian:bookworm root with debootstrap (minbase) from the Debian apt source this machine already uses,
#      `podman import`ed as debian:bookworm-slim (the Dockerfile's FROM);
#   2. `podman build --isolation=chroot --pull=never` of the repository's Dockerfile;
#   3. checks the image's config (user, entrypoint, ports, healthcheck) and contents (no toolchain, no apt lists,
#      every library resolves), then runs the image's binary from `podman image mount` with chroot, in a private mount
#      namespace with the image root read-only and the secrets bind-mounted read-only at the documented mount points:
#      version, keygen, check-config ("configuration OK"), and `serve` on loopback ports driven through one full flow
#      with curl (create session, long-poll, callback, pickup, delete), the image's HEALTHCHECK command, SIGTERM (exit
#      0) and `authrelay audit` of the log it wrote.
# Everything (podman storage included) lives in one temporary directory removed at the end: nothing is cached.
# usage: deploy/container-test.sh        environment: KEEP=1 keeps the temporary directory for a post-mortem
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
t0=$(date +%s)
step() { printf '\n==> [%3ds] %s\n' "$(($(date +%s) - t0))" "$*"; }
fail() { echo "container-test: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "run as root (debootstrap, podman image mount and chroot need it)"

step "packages"
need=(debootstrap podman jq curl openssl ca-certificates util-linux)
missing=()
for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

work=$(mktemp -d /var/tmp/authrelay-ctest.XXXXXX)
rootfs=$work/rootfs
pm=(podman --root "$work/storage" --runroot "$work/run" --storage-driver overlay --events-backend none
    --cgroup-manager cgroupfs)
server_pid=""
image_mounted=""
cleanup() {
    set +e
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid"
        wait "$server_pid" 2>/dev/null
    fi
    [ -n "$image_mounted" ] && "${pm[@]}" image unmount --all >/dev/null 2>&1
    [ "${KEEP:-0}" = 1 ] || "${pm[@]}" rmi --all --force >/dev/null 2>&1
    # containers/storage leaves its overlay directory bind-mounted; debootstrap may leave /proc or /sys mounted
    awk -v w="$work" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null
    done
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# --- 1. the base image ------------------------------------------------------------------------------------------------
step "apt source of this machine"
# The Debian archive this machine installs from: the first URI serving the suite `bookworm` (deb822 .sources files
# or one-line .list files), and the one serving `bookworm-security` if any. Nothing is hard-coded.
sources=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
archive_uri() { # SUITE: prints the first URI of a `deb` entry that serves SUITE
    printf '%s\n\n' "$sources" | awk -v want="$1" '
        function flush() { if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " want " ") && uris != "" && !done) {
                               split(uris, u, " "); print u[1]; done = 1 }
                           types = ""; suites = ""; uris = "" }
        /^[[:space:]]*#/ { next }
        /^[[:space:]]*$/ { flush(); next }
        /^deb[[:space:]]/ { line = $0; sub(/\[[^]]*\]/, "", line); n = split(line, f, /[[:space:]]+/)
                            if (f[3] == want && !done) { print f[2]; done = 1 } next }
        /^Types:/ { types = $0; sub(/^Types:[[:space:]]*/, "", types) }
        /^URIs:/ { uris = $0; sub(/^URIs:[[:space:]]*/, "", uris) }
        /^Suites:/ { suites = $0; sub(/^Suites:[[:space:]]*/, "", suites) }
        END { flush() }'
}
mirror=$(archive_uri bookworm)
security=$(archive_uri bookworm-security)
[ -n "$mirror" ] || fail "no apt source serving bookworm in /etc/apt/sources.list{,.d/}"
echo "archive: $mirror${security:+, security: $security}"

step "debootstrap --variant=minbase bookworm"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
# what the official slim image has: the deb822 sources (with updates and security), no package lists, no host files
rm -f "$rootfs/etc/apt/sources.list"
{
    printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\n' "$mirror"
    printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    if [ -n "$security" ]; then
        printf '\nTypes: deb\nURIs: %s\nSuites: bookworm-security\nComponents: main\n' "$security"
        printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    fi
} >"$rootfs/etc/apt/sources.list.d/debian.sources"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
: >"$rootfs/etc/resolv.conf"
: >"$rootfs/etc/hostname"

step "podman import as debian:bookworm-slim"
tar -C "$rootfs" --numeric-owner -cf - . | "${pm[@]}" import - debian:bookworm-slim >/dev/null
rm -rf "$rootfs"

# --- 2. the image -----------------------------------------------------------------------------------------------------
step "podman build --isolation=chroot --pull=never"
# --format docker: HEALTHCHECK exists only in the Docker image format (the OCI format drops it)
"${pm[@]}" build --isolation=chroot --pull=never --format docker -t authrelay:test -f "$top/Dockerfile" "$top" \
    >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; fail "podman build"; }
"${pm[@]}" images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep authrelay

# --- 3. the image's config and contents -------------------------------------------------------------------------------
step "image config"
cfg=$("${pm[@]}" image inspect authrelay:test)
jqc() { jq -r "$1" <<<"$cfg"; }
[ "$(jqc '.[0].Config.User')" = "10001:10001" ] || fail "user: $(jqc '.[0].Config.User')"
[ "$(jqc '.[0].Config.Entrypoint | join(" ")')" = "/usr/local/bin/authrelay" ] || fail "entrypoint"
[ "$(jqc '.[0].Config.Cmd | join(" ")')" = "serve" ] || fail "cmd"
[ "$(jqc '.[0].Config.ExposedPorts | keys | join(" ")')" = "8443/tcp 9090/tcp" ] || fail "exposed ports"
# podman keeps the Docker-format healthcheck beside the OCI config, Docker inside it
hc_json='(.[0].Config.Healthcheck // .[0].Healthcheck).Test'
hc=$(jqc "$hc_json"' // [] | join(" ")')
case "$hc" in "CMD curl "*"http://127.0.0.1:9090/healthz") ;; *) fail "healthcheck: '$hc'" ;; esac
mapfile -t image_env < <(jqc '.[0].Config.Env[]')
printf '%s\n' "${image_env[@]}" | grep -qx 'AUTHRELAY_ADMIN_LISTEN=0.0.0.0:9090' || fail "AUTHRELAY_ADMIN_LISTEN"
printf '%s\n' "${image_env[@]}" | grep -qx 'AUTHRELAY_LISTEN=0.0.0.0:8443' || fail "AUTHRELAY_LISTEN"
echo "user 10001:10001, entrypoint, ports, healthcheck, env: ok"

mnt=$("${pm[@]}" image mount authrelay:test)
image_mounted=1
step "image contents ($mnt)"
for f in usr/bin/gcc usr/bin/cc usr/bin/cmake usr/bin/make usr/include/h2o.h; do
    [ ! -e "$mnt/$f" ] || fail "build tool in the runtime image: /$f"
done
[ -z "$(find "$mnt/var/lib/apt/lists" -type f ! -name lock)" ] || fail "apt lists left"
chroot "$mnt" /usr/bin/ldd /usr/local/bin/authrelay >"$work/ldd" || fail "ldd"
! grep -q 'not found' "$work/ldd" || { cat "$work/ldd" >&2; fail "unresolved libraries"; }
grep -q '^authrelay:x:10001:10001:' "$mnt/etc/passwd" || fail "no authrelay user 10001"
echo "no toolchain, no apt lists, every library resolves, user authrelay(10001)"

# free loopback ports
free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 20000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
    fail "no free port"
}
pub_port=$(free_port)
adm_port=$(free_port)
[ "$pub_port" != "$adm_port" ] || adm_port=$(free_port)

# secrets at the documented mount points: /etc/authrelay/{tls.crt,tls.key,keys.json}
secrets=$work/secrets
install -d -m 0750 -o 10001 -g 10001 "$secrets"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$secrets/tls.key" -out "$secrets/tls.crt" 2>/dev/null
chown 10001:10001 "$secrets/tls.key" "$secrets/tls.crt"

# image_cmd [--rw-secrets]: sets IC to a command prefix that runs what follows it as the image's user with the image's
# environment (plus AR_ENV), chrooted into the image root (read-only), /dev and /proc mounted, the secrets directory
# bind-mounted on /etc/authrelay (read-only unless --rw-secrets), all in a private mount namespace that vanishes with
# the process. Every step execs the next, so `"${IC[@]}" authrelay serve &` leaves $! = the relay's pid.
AR_ENV=()
image_cmd() {
    local sec_opt=ro
    [ "${1:-}" = --rw-secrets ] && sec_opt=rw
    # shellcheck disable=SC2016 # the inner script expands its own variables
    IC=(env -i "${image_env[@]}" "${AR_ENV[@]}" MNT="$mnt" SECRETS="$secrets" SEC_OPT="$sec_opt"
        unshare --mount --propagation private -- /bin/sh -c '
            set -e
            mount --bind "$MNT" "$MNT"
            mount -o remount,bind,ro "$MNT"
            mount --rbind /dev "$MNT/dev"
            mount -t proc proc "$MNT/proc"
            mount --bind "$SECRETS" "$MNT/etc/authrelay"
            mount -o "remount,bind,$SEC_OPT" "$MNT/etc/authrelay"
            root=$MNT
            unset MNT SECRETS SEC_OPT
            exec chroot --userspec=10001:10001 "$root" "$@"' image_cmd)
}
in_image() {
    local IC
    if [ "$1" = --rw-secrets ]; then image_cmd --rw-secrets; shift; else image_cmd; fi
    "${IC[@]}" "$@"
}

step "authrelay version"
in_image /usr/local/bin/authrelay version

step "authrelay keygen /etc/authrelay/keys.json"
in_image --rw-secrets /usr/local/bin/authrelay keygen /etc/authrelay/keys.json
[ "$(stat -c '%a %u' "$secrets/keys.json")" = "600 10001" ] || fail "key file mode/owner"
# the relay runs on a read-only root below: prove the test's root really is read-only (/tmp is writable for 10001)
ro_err=$(in_image /bin/sh -c ': > /tmp/written' 2>&1) && fail "the image root is writable in the test"
grep -q 'Read-only file system' <<<"$ro_err" || fail "unexpected: $ro_err"

B=https://localhost:$pub_port
AR_ENV=("AUTHRELAY_LISTEN=127.0.0.1:$pub_port" "AUTHRELAY_ADMIN_LISTEN=127.0.0.1:$adm_port" "AUTHRELAY_PUBLIC_URL=$B"
    AUTHRELAY_TLS_CERT=/etc/authrelay/tls.crt AUTHRELAY_TLS_KEY=/etc/authrelay/tls.key
    AUTHRELAY_KEYS=/etc/authrelay/keys.json AUTHRELAY_THREADS=2 AUTHRELAY_SHUTDOWN_GRACE=5
    AUTHRELAY_ALLOW_UNBOUND=1) # the flow below is version 1 (curl plays the browser); the 1.1 start page is checked too

step "authrelay check-config"
out=$(in_image /usr/local/bin/authrelay check-config 2>&1) || { echo "$out" >&2; fail "check-config"; }
echo "$out"
[ "$out" = "configuration OK" ] || fail "check-config said: $out"

step "authrelay serve on 127.0.0.1:$pub_port (admin 127.0.0.1:$adm_port)"
image_cmd
"${IC[@]}" /usr/local/bin/authrelay serve >"$work/serve.log" 2>"$work/serve.err" &
server_pid=$!
for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$adm_port/readyz" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.err" >&2; fail "serve exited"; }
    sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$adm_port/readyz" || fail "/readyz"
# the image's own HEALTHCHECK command, run inside the image, pointed at the test's admin port
mapfile -t hc_cmd < <(jqc "$hc_json"'[1:][]' | sed "s|127.0.0.1:9090|127.0.0.1:$adm_port|")
in_image "${hc_cmd[@]}" || fail "HEALTHCHECK command"
echo "readyz 200, HEALTHCHECK ok"

step "one flow with curl"
cu=(curl -sS --cacert "$secrets/tls.crt" --max-time 20)
"${cu[@]}" -f "$B/.well-known/authrelay" | jq -e --arg r "$B/qorus-oauth2-redirect" '.redirect_uri == $r' >/dev/null ||
    fail "discovery"
created=$("${cu[@]}" -w '\n%{http_code}' "$B/v1/sessions" -H 'Content-Type: application/json' \
    -d '{"authorization_server": "https://auth.atlassian.com/authorize",
         "return_uri": "https://qorus.example.com:8011/grant"}')
[ "$(tail -n1 <<<"$created")" = 201 ] || fail "create session: $created"
created=$(head -n -1 <<<"$created")
state=$(jq -er .state <<<"$created")
poll_url=$(jq -er .poll_url <<<"$created")
poll_token=$(jq -er .poll_token <<<"$created")
case "$poll_url" in "$B/v1/sessions/"*) ;; *) fail "poll_url $poll_url" ;; esac
echo "session created (201)"
"${cu[@]}" -o "$work/pickup.json" -w '%{http_code}' "$poll_url" -H "Authorization: Bearer $poll_token" \
    -H 'Prefer: wait=15' >"$work/pickup.code" &
pickup_pid=$!
sleep 0.5
kill -0 "$pickup_pid" 2>/dev/null || fail "the pickup did not wait: $(cat "$work/pickup.code")"
headers=$("${cu[@]}" -o /dev/null -D - "$B/qorus-oauth2-redirect?code=THE_CODE&state=$(jq -rn --arg s "$state" '$s|@uri')")
grep -q '^HTTP/[0-9.]* 303' <<<"$headers" || fail "callback: $headers"
grep -qi '^location: https://qorus.example.com:8011/grant?status=success' <<<"$headers" || fail "callback: $headers"
echo "callback 303 -> return_uri?status=success"
wait "$pickup_pid" || fail "pickup curl"
[ "$(cat "$work/pickup.code")" = 200 ] || fail "pickup: $(cat "$work/pickup.code") $(cat "$work/pickup.json")"
jq -e '.status == "authorized" and .code == "THE_CODE"' "$work/pickup.json" >/dev/null ||
    fail "pickup: $(cat "$work/pickup.json")"
echo "long-poll woke: 200 authorized"
code=$("${cu[@]}" -o /dev/null -w '%{http_code}' -X DELETE "$poll_url" -H "Authorization: Bearer $poll_token")
[ "$code" = 204 ] || fail "delete: $code"
echo "delete 204"
# protocol 1.1: a bound session and its confirmation page (the registrable domain comes from the public suffix list,
# which the runtime image must carry)
created=$("${cu[@]}" -w '\n%{http_code}' "$B/v1/sessions" -H 'Content-Type: application/json' \
    -d '{"authorization_server": "https://auth.atlassian.com/authorize", "return_uri": "https://qorus.example.co.uk:8011/grant",
         "authorize_params": {"client_id": "container-test"}}')
[ "$(tail -n1 <<<"$created")" = 201 ] || fail "create a 1.1 session: $created"
start_url=$(head -n -1 <<<"$created" | jq -er .start_url)
page=$("${cu[@]}" -D "$work/start.headers" "$start_url") || fail "start page"
grep -q 'qorus.<b>example.co.uk</b><b>:8011</b>' <<<"$page" || fail "start page: no registrable domain in bold: $page"
grep -qi '^set-cookie: __Host-authrelay=' "$work/start.headers" || fail "start page: no cookie"
echo "1.1 confirmation page 200 (registrable domain example.co.uk in bold, cookie set)"
curl -fsS "http://127.0.0.1:$adm_port/metrics" | grep -q '^authrelay_events_total' || fail "metrics"

step "SIGTERM"
kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=""
[ "$rc" = 0 ] || { cat "$work/serve.err" >&2; fail "serve exited $rc after SIGTERM"; }
echo "exit 0"

step "authrelay audit of the log"
in_image /usr/local/bin/authrelay audit - <"$work/serve.log" || { cat "$work/serve.log" >&2; fail "audit"; }

step "clean up"
"${pm[@]}" image unmount authrelay:test >/dev/null
image_mounted=""
"${pm[@]}" rmi --force authrelay:test debian:bookworm-slim >/dev/null
echo
echo "container test passed in $(($(date +%s) - t0))s"
