#!/usr/bin/env bash
# run.sh: the provider tests in Node: iss.test.js (RFC 9207 on a denial: the picked-up result validated by oauth4webapi,
# against the real relay and the tiny AS of as.js). Installs the pinned npm package (npm ci, from package-lock.json) when
# it is missing or at another version, builds authrelay when AUTHRELAY_BIN does not exist, then runs `node --test` on this
# directory. The fixtures (*.json) are replayed by the C integration test tests/integration/test_providers.c (ctest).
# usage: tests/providers/run.sh        environment: AUTHRELAY_BIN (default build/authrelay); PROVIDERS_TEST_TIMEOUT (s, 300)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
export AUTHRELAY_BIN=${AUTHRELAY_BIN:-$top/build/authrelay}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "node and npm are needed (the base image brings them)" >&2
    exit 1
fi
want=$(node -p "require('$here/package.json').devDependencies['oauth4webapi']")
have=$(node -p "try { require('$here/node_modules/oauth4webapi/package.json').version } catch { '' }")
if [ "$have" != "$want" ]; then
    echo "installing oauth4webapi $want (npm ci)" >&2
    (cd "$here" && npm ci --no-audit --no-fund --ignore-scripts)
fi

if [ ! -x "$AUTHRELAY_BIN" ]; then
    echo "building $AUTHRELAY_BIN" >&2
    "$top/deploy/packages.sh" build
    "$top/deploy/build.sh" "$(dirname "$AUTHRELAY_BIN")"
fi

cd "$top"
rc=0
timeout --kill-after=10 "${PROVIDERS_TEST_TIMEOUT:-300}" node --test --test-reporter=spec tests/providers/ || rc=$?
[ "$rc" -eq 0 ] && echo "provider tests passed" || echo "provider tests FAILED ($rc)" >&2
exit "$rc"
