#!/usr/bin/env bash
# dev.sh: zero-setup development run: installs what is missing, builds, and runs `authrelay serve --dev`
# (https://localhost:8443 with an ephemeral self-signed certificate, ephemeral keys, the embedded store; admin on
# http://127.0.0.1:9090). Extra arguments go to `authrelay serve`.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/deploy/packages.sh" build
"$top/deploy/build.sh" "$top/build"
exec "$top/build/authrelay" serve --dev "$@"
