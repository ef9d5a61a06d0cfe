#!/usr/bin/env bash
# run.sh: the whole test suite: installs what is missing, checks formatting and banned functions, builds with warnings
# as errors, and runs every test (unit, integration) in a normal build and again under ASan+UBSan; then a short fuzz run.
# Then the browser end-to-end tests, the OpenAPI conformance test, the deployment recipes: deploy/validate.sh, and as root deploy/container-test.sh (builds the Dockerfile).
# usage: tests/run.sh          environment: RLY_FUZZ_SECONDS (default 10; 0 skips fuzzing), RLY_CONTAINER_TEST=0
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
"$top/deploy/packages.sh" test

step() { printf '\n==> %s\n' "$*"; }

step "clang-format"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find common relay tests -name '*.[ch]')
# shellcheck disable=SC2086
clang-format --dry-run --Werror $files

step "banned functions (style.md)"
# shellcheck disable=SC2086
if grep -nHE '\b(sprintf|strcpy|strcat|strncpy|strtok|atoi|sscanf|gets)[[:space:]]*\(' $files; then
    echo "banned functions found" >&2
    exit 1
fi

step "build (warnings as errors)"
"$top/deploy/build.sh" "$top/build"
step "layers: no call cycles between source files (docs/internals.md)"
"$top/tests/layers/check_cycles.sh" --self-test
"$top/tests/layers/check_cycles.sh" "$top/build"
step "tests"
(cd "$top/build" && ctest --output-on-failure -j2 --timeout 600)

step "build with ASan + UBSan"
AUTHRELAY_CMAKE_OPTIONS="-DAUTHRELAY_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug" "$top/deploy/build.sh" "$top/build-asan"
step "tests under ASan + UBSan"
(cd "$top/build-asan" && ctest --output-on-failure -j2 --timeout 600)

secs=${RLY_FUZZ_SECONDS:-10}
if [ "$secs" -gt 0 ]; then
    # tests/fuzz/smoke.sh: a crash, a leak, a timeout or an out-of-memory of any target fails this script (set -e); its
    # self-test first proves that (planted bugs must fail it, a healthy target must pass)
    step "fuzz smoke self-test: a planted crash, leak and timeout must each fail the run"
    "$top/tests/fuzz/smoke.sh" --self-test "$top/build-fuzz"
    step "fuzz smoke (${secs}s per target, every tests/fuzz/fuzz_*.c)"
    "$top/tests/fuzz/smoke.sh" "$top/build-fuzz" "$secs"
fi
step "browser end to end: Debian chromium, the fake AS, the relay over TLS with Redis, authrelay client"
AUTHRELAY_BIN="$top/build/authrelay" "$top/tests/browser/run.sh"

step "providers: RFC 9207 iss on denials validated with a standard client library (oauth4webapi), against the real relay"
AUTHRELAY_BIN="$top/build/authrelay" "$top/tests/providers/run.sh"

step "OpenAPI: the document validates, and the relay's real responses match it"
AUTHRELAY_BIN="$top/build/authrelay" "$top/tests/openapi/run.sh"

step "deployment recipes: manifests, compose file and systemd unit validated offline"
"$top/deploy/validate.sh"

if [ "$(id -u)" -eq 0 ] && [ "${RLY_CONTAINER_TEST:-1}" != 0 ]; then
    step "container image: podman build of the Dockerfile and a flow against the binary inside it"
    "$top/deploy/container-test.sh"
else
    echo "(container image test skipped: needs root; RLY_CONTAINER_TEST=0 skips it)"
fi

echo
echo "all tests passed"
