#!/usr/bin/env bash
# run.sh: the browser end-to-end tests, the fake AS's tests and the second sealing implementation's vector check.
# Installs what is missing (Debian's chromium, redis-server, openssl; the npm devDependency playwright-core, which
# never downloads a browser), builds authrelay when AUTHRELAY_BIN does not exist, then runs `node --test` on this
# directory. Exit status: that of the tests (non-zero on any failure).
# usage: tests/browser/run.sh
#   environment: AUTHRELAY_BIN (default build/authrelay); AUTHRELAY_E2E_REQUIRE_CLIENT (default 1 here: fail when
#   `authrelay client` is missing; 0 skips those tests); BROWSER_TEST_TIMEOUT (seconds, default 600)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
export AUTHRELAY_BIN=${AUTHRELAY_BIN:-$top/build/authrelay}
export AUTHRELAY_E2E_REQUIRE_CLIENT=${AUTHRELAY_E2E_REQUIRE_CLIENT:-1}
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

missing=()
for p in chromium redis-server openssl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v node >/dev/null || missing+=(nodejs npm) # the base image brings Node.js 20 and npm
if [ ${#missing[@]} -ne 0 ]; then
    echo "installing: ${missing[*]}" >&2
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q
    $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
command -v npm >/dev/null || { echo "npm is missing" >&2; exit 1; }

want=$(node -p "require('$here/package.json').devDependencies['playwright-core']")
have=$(node -p "try { require('$here/node_modules/playwright-core/package.json').version } catch { '' }")
if [ "$have" != "$want" ]; then
    echo "installing playwright-core $want (npm ci)" >&2
    (cd "$here" && npm ci --no-audit --no-fund --ignore-scripts)
fi

if [ ! -x "$AUTHRELAY_BIN" ]; then
    echo "building $AUTHRELAY_BIN" >&2
    "$top/deploy/packages.sh" build
    "$top/deploy/build.sh" "$(dirname "$AUTHRELAY_BIN")"
fi

cd "$top"
rc=0
timeout --kill-after=10 "${BROWSER_TEST_TIMEOUT:-600}" node --test --test-reporter=spec tests/browser/ || rc=$?
[ "$rc" -eq 0 ] && echo "browser tests passed (screenshots in tests/artifacts/)" || echo "browser tests FAILED ($rc)" >&2
exit "$rc"
