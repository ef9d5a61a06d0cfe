#!/usr/bin/env bash
# run.sh: validates docs/openapi.yaml (docs/openapi/validate.sh), then checks a real relay against it
# (tests/openapi/conformance.test.js, Node's test runner). Installs the pinned npm packages on first use
# (into the git-ignored node_modules/ next to each package.json); afterwards it runs offline.
# usage: tests/openapi/run.sh        environment: AUTHRELAY_BIN (default build/authrelay; built if missing)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

"$top/docs/openapi/validate.sh"

# install when a pinned package is missing or at another version
if ! (cd "$here" && node -e '
    const p = require("./package.json");
    for (const [n, v] of Object.entries(p.devDependencies))
        if (require(n + "/package.json").version !== v) process.exit(1);' 2>/dev/null); then
    (cd "$here" && npm install --no-audit --no-fund --no-package-lock --loglevel=error)
fi

export AUTHRELAY_BIN=${AUTHRELAY_BIN:-$top/build/authrelay}
if [ ! -x "$AUTHRELAY_BIN" ]; then
    build=$(dirname "$AUTHRELAY_BIN")
    cmake -S "$top" -B "$build" >/dev/null
    cmake --build "$build" -j"$(nproc)" --target authrelay >/dev/null
fi
cd "$top"
exec node --test tests/openapi/
