#!/usr/bin/env bash
# make bench: figures for image size, start time, throughput and Go builds.
# Flags pass through, e.g. bench/run.sh -starts 5 -duration 5s -skip-cold-build
# Without internet, build the base first: TEST_BASE_IMAGE=$(make -s standin) make bench
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./bench "$@"
