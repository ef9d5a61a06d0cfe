#!/usr/bin/env bash
# packages.sh: installs the Debian 12 packages authrelay needs that are missing (build, run, test); idempotent
# usage: deploy/packages.sh [build|test|bench|runtime]   (default: build; bench: tests/bench/run.sh's tools too)
#   runtime: only the shared libraries the binary links and the CA bundle (the Dockerfile's runtime stage)
set -euo pipefail

build_pkgs=(gcc libc6-dev make cmake pkg-config libh2o-evloop-dev libhiredis-dev libjson-c-dev libssl-dev
    libcurl4-openssl-dev libcmocka-dev libpsl-dev openssl curl ca-certificates)
test_pkgs=(clang clang-format libclang-rt-14-dev redis-server redis-sentinel redis-tools stunnel4 haproxy)
bench_pkgs=(wrk h2o redis-server redis-tools)
runtime_pkgs=(libh2o-evloop0.13 libhiredis0.14 libjson-c5 libssl3 libcurl4 libpsl5 publicsuffix ca-certificates)

want=("${build_pkgs[@]}")
[ "${1:-build}" = test ] && want+=("${test_pkgs[@]}")
[ "${1:-build}" = bench ] && want+=("${bench_pkgs[@]}")
[ "${1:-build}" = runtime ] && want=("${runtime_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
