#!/usr/bin/env bash
# Signing and verification speed of the alipay crate next to `openssl speed
# rsa2048`, measured in the same sitting (this machine is shared and noisy:
# compare ratios, not absolute numbers).
#   targets: sign ≤ 1.2× openssl's sign time, verify ≤ 1.5× openssl's verify time
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SECS:-3}
ossl=$(openssl speed -seconds "$secs" rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $6, $7}')
read -r ossl_sign_s ossl_verify_s <<<"$ossl"
bench=$(cargo bench -q -p alipay --bench crypto -- --warm-up-time 1 --measurement-time "$secs" --output-format bencher 2>/dev/null | grep '^test ')
ns() { awk -v n="$1" '$2 == n {gsub(",", "", $5); print $5}' <<<"$bench"; }
sign_ns=$(ns sign_page_pay_request); notify_ns=$(ns verify_notification); resp_ns=$(ns verify_response)
awk -v ss="$ossl_sign_s" -v vs="$ossl_verify_s" -v s="$sign_ns" -v n="$notify_ns" -v r="$resp_ns" 'BEGIN {
  printf "%-34s %12s %12s %10s\n", "operation", "ours ops/s", "openssl/s", "time ratio"
  printf "%-34s %12.0f %12.0f %9.2fx\n", "sign page-pay request (RSA2)", 1e9/s, ss, s/(1e9/ss)
  printf "%-34s %12.0f %12.0f %9.2fx\n", "verify notification (parse+verify)", 1e9/n, vs, n/(1e9/vs)
  printf "%-34s %12.0f %12.0f %9.2fx\n", "verify response (extract+verify+decode)", 1e9/r, vs, r/(1e9/vs)
}'
