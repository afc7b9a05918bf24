#!/usr/bin/env bash
# Shows that the static x86_64-unknown-linux-musl build (what Aliyun FC and
# Tencent SCF run: their images have older glibc than a default build needs)
# builds, is static, and serves: `zhifu serve` on SQLite under a temporary
# directory answers /healthz. Not part of scripts/test (minutes of build);
# ~4–5 minutes from cold on 2 cores, seconds when up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
rustup target list --installed | grep -qx "$target" || rustup target add "$target"
command -v musl-gcc >/dev/null || { echo "musl.sh: apt-get install -y musl-tools" >&2; exit 1; }
start=$(date +%s)
cargo build --profile dist --locked --target "$target" -p zhifu -p zhifu-lambda
echo "build: $(($(date +%s) - start)) s"
dir="${CARGO_TARGET_DIR:-target}/$target/dist"
for b in zhifu zhifu-lambda; do
  file "$dir/$b"
  file "$dir/$b" | grep -q "static" || { echo "musl.sh: $b is not static" >&2; exit 1; }
  echo "$b: $(stat -c %s "$dir/$b") bytes"
done
"$dir/zhifu" --version
tmp=$(mktemp -d)
pid=
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; rm -rf "$tmp"' EXIT
# An app key pair, and another pair playing Alipay's.
"$dir/zhifu" keygen --out "$tmp/app" >/dev/null
"$dir/zhifu" keygen --out "$tmp/alipay" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$dir/zhifu" migrate --database-url "sqlite://$tmp/zhifu.db"
env -i PATH=/usr/bin:/bin \
  ZHIFU_DATABASE_URL="sqlite://$tmp/zhifu.db" \
  ALIPAY_APP_ID=2021000122671080 \
  ALIPAY_APP_PRIVATE_KEY_FILE="$tmp/app/app_private_key.pem" \
  ALIPAY_PUBLIC_KEY="$(cat "$tmp/alipay/app_public_key.txt")" \
  ZHIFU_PUBLIC_URL=https://shop.example.com ZHIFU_API_KEY=musl-check-key-0123456789 \
  FC_CUSTOM_LISTEN_PORT="$port" "$dir/zhifu" serve --host 127.0.0.1 >"$tmp/out" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
  if curl -fsS "http://127.0.0.1:$port/healthz" 2>/dev/null; then echo; echo "musl.sh: the static build serves"; exit 0; fi
  sleep 0.05
done
cat "$tmp/out"
echo "musl.sh: no answer from the static build" >&2
exit 1
