#!/usr/bin/env bash
# Builds the static x86_64 musl `zhifu` and assembles the code directories
# the function platforms deploy:
#   deploy/aliyun-fc/code/    bootstrap + zhifu      (s deploy)
#   deploy/tencent-scf/code/  scf_bootstrap + zhifu  (serverless deploy)
# Needs `rustup target add x86_64-unknown-linux-musl` and musl-tools (Debian)
# for the C parts (aws-lc, SQLite). About 4–5 minutes from cold on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
rustup target list --installed | grep -qx "$target" || rustup target add "$target"
command -v musl-gcc >/dev/null || { echo "package.sh: install musl-tools (apt-get install -y musl-tools)" >&2; exit 1; }
cargo build --profile dist --locked --target "$target" -p zhifu
bin="${CARGO_TARGET_DIR:-target}/$target/dist/zhifu"
for dir in aliyun-fc:bootstrap tencent-scf:scf_bootstrap; do
  platform=${dir%%:*} script=${dir##*:}
  mkdir -p "deploy/$platform/code"
  cp "$bin" "deploy/$platform/code/zhifu"
  cp "deploy/$platform/$script" "deploy/$platform/code/$script"
  chmod 755 "deploy/$platform/code/zhifu" "deploy/$platform/code/$script"
  echo "deploy/$platform/code: $(ls deploy/$platform/code | tr '\n' ' ')"
done
