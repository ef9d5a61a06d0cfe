#!/usr/bin/env bash
# run.sh: the whole test suite: installs what is missing, checks formatting and banned functions, builds with warnings
# as errors, and runs every test (unit, integration) in a normal build and again under ASan+UBSan; then a short fuzz run.
# Then the browser end-to-end tests, the OpenAPI conformance test, the deployment recipes: deploy/validate.sh, and as root deploy/container-test.sh (builds the Dockerfile).
# usage: tests/run.sh          environment: RLY_FUZZ_SECONDS (default 15; 0 skips fuzzing), RLY_CONTAINER_TEST=0
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

secs=${RLY_FUZZ_SECONDS:-15}
if [ "$secs" -gt 0 ]; then
    step "fuzz smoke (${secs}s per target)"
    CC=clang cmake -S "$top" -B "$top/build-fuzz" -DAUTHRELAY_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$top/build-fuzz" -j2 --target fuzz_callback fuzz_session_req fuzz_addr fuzz_lock
    for t in fuzz_callback fuzz_session_req fuzz_addr fuzz_lock; do
        work=$(mktemp -d)
        cp -r "$top/tests/fuzz/corpus/$t/." "$work/"
        # a crash, a leak, a timeout or an out-of-memory makes libFuzzer exit non-zero, and so this script (set -e)
        dict=()
        [ -f "$top/tests/fuzz/$t.dict" ] && dict=(-dict="$top/tests/fuzz/$t.dict")
        "$top/build-fuzz/$t" -max_total_time="$secs" -max_len=20000 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
            "${dict[@]}" "$work" >"$work.log" 2>&1 || { tail -40 "$work.log" >&2; echo "fuzz target $t failed" >&2; exit 1; }
        grep -E '^stat::number_of_executed_units' "$work.log" | sed "s/^/  $t: /"
        rm -rf "$work" "$work.log"
    done
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
