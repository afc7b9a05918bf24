#!/usr/bin/env bash
# Cold-start figures (a benchmark, not a test; the README's table comes from
# here): process exec → first 200 on /healthz and → first answered
# notification, for `zhifu serve` on SQLite and PostgreSQL; the Lambda
# binary's init time and first invocation; peak RSS; binary sizes.
#
#   bench/coldstart.sh            # glibc build, `dist` profile
#   bench/coldstart.sh --musl     # the static musl build that FC/SCF run
#   RUNS=50 bench/coldstart.sh    # more processes per figure (default 20)
#
# PostgreSQL: ZHIFU_TEST_DATABASE_URL if set, else a throwaway cluster
# started here (scripts/lib/postgres.sh). Builds the `dist` profile first (~5 min
# cold on 2 cores; musl ~5 min).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-20}
target_args=()
# The shipped profile (`dist`: fat LTO, size-optimised Rust, full-speed C);
# PROFILE=release compares with the quick-to-build one.
profile=${PROFILE:-dist}
dir="${CARGO_TARGET_DIR:-target}/$profile"
if [ "${1:-}" = "--musl" ]; then
  target_args=(--target x86_64-unknown-linux-musl)
  dir="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-musl/$profile"
fi
cargo build --profile "$profile" --locked "${target_args[@]}" -p zhifu -p zhifu-lambda
cargo build --release --locked -p zhifu-lambda --example coldstart
if [ -z "${ZHIFU_TEST_DATABASE_URL:-}" ]; then
  source scripts/lib/postgres.sh
  start_postgres
  trap stop_postgres EXIT
fi
echo "machine: $(nproc) cores, $(uname -sr), $(rustc --version)"
echo "binaries: $dir (${1:-glibc})"
"${CARGO_TARGET_DIR:-target}/release/examples/coldstart" \
  --zhifu "$dir/zhifu" --lambda "$dir/zhifu-lambda" --runs "$runs"
