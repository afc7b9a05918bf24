#!/usr/bin/env bash
# What durable commits cost on SQLite (crates/zhifu-store/benches/durability.rs):
# one payment committed with `synchronous = FULL` (Zhifu's default: an
# answered `success` survives power loss) against `NORMAL`, measured in the
# same run on the build disk. Prints both and the ratio (noisy machine:
# compare the ratio, not the absolute numbers).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SECS:-5}
out=$(cargo bench -q -p zhifu-store --bench durability -- --warm-up-time 1 --measurement-time "$secs" --output-format bencher 2>/dev/null | grep '^test ')
ns() { awk -v n="$1" '$2 ~ n {gsub(",", "", $5); print $5}' <<<"$out"; }
normal=$(ns synchronous_normal); full=$(ns synchronous_full)
awk -v n="$normal" -v f="$full" 'BEGIN {
  printf "%-36s %12s %12s\n", "one payment (2 write transactions)", "µs", "payments/s"
  printf "%-36s %12.0f %12.0f\n", "synchronous = NORMAL", n/1e3, 1e9/n
  printf "%-36s %12.0f %12.0f\n", "synchronous = FULL (default)", f/1e3, 1e9/f
  printf "FULL costs %.2fx NORMAL\n", f/n
}'
