#!/usr/bin/env bash
# build.sh: the one build recipe (CI, the README and the Dockerfile use it): a Release build of authrelay, warnings as errors
# usage: deploy/build.sh [BUILD_DIR]   (default: build); extra CMake options in AUTHRELAY_CMAKE_OPTIONS
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/build}
# shellcheck disable=SC2086
cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAUTHRELAY_WERROR=ON ${AUTHRELAY_CMAKE_OPTIONS:-} >/dev/null
cmake --build "$dir" -j"$(nproc)"
