#!/usr/bin/env bash
# validate.sh: lints docs/openapi.yaml with Redocly CLI (OpenAPI 3.1 structural validation and the recommended-strict
# ruleset, which also validates every example against its schema). Installs the pinned version into
# docs/openapi/node_modules (git-ignored) on first use; afterwards it runs offline.
# usage: docs/openapi/validate.sh [FILE]     (default: docs/openapi.yaml)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
spec=${1:-"$here/../openapi.yaml"}
want=$(node -p "require('$here/package.json').devDependencies['@redocly/cli']")
have=$(node -p "try { require('$here/node_modules/@redocly/cli/package.json').version } catch (e) { '' }")
if [ "$have" != "$want" ]; then
    (cd "$here" && npm install --no-audit --no-fund --no-package-lock --loglevel=error)
fi
# no telemetry, no update check: the lint must not need the network
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
exec "$here/node_modules/.bin/redocly" lint --config "$here/redocly.yaml" --format stylish "$spec"
