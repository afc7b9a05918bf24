#!/usr/bin/env bash
# Builds the Lambda bootstrap for deploy/aws-sam/template.yaml: a static
# x86_64 musl binary (runs on provided.al2023, needs nothing from the image)
# copied to deploy/aws-sam/build/bootstrap. Needs `rustup target add
# x86_64-unknown-linux-musl` and musl-tools (Debian) for the C parts.
# For arm64 (Graviton) use cargo-lambda instead (see deploy/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
target=x86_64-unknown-linux-musl
rustup target list --installed | grep -qx "$target" || rustup target add "$target"
command -v musl-gcc >/dev/null || { echo "build.sh: install musl-tools (apt-get install -y musl-tools)" >&2; exit 1; }
cargo build --profile dist --locked --target "$target" -p zhifu-lambda
mkdir -p deploy/aws-sam/build
cp "${CARGO_TARGET_DIR:-target}/$target/dist/zhifu-lambda" deploy/aws-sam/build/bootstrap
ls -l deploy/aws-sam/build/bootstrap
