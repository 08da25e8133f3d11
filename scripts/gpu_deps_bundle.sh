#!/usr/bin/env bash
# Packs the Debian build dependencies for the air-gapped GPU hosts into .deps/deps-bundle.tar.gz
# (carried by the device tool; unpacked by scripts/gpu_host_build.sh): the shared bundle's default
# set plus ICU, which the tokenizer's normalizers need and the GPU hosts lack.
# usage: scripts/gpu_deps_bundle.sh [OUT_DIR]   (default .deps)
set -euo pipefail
shared=$(dirname "$0")/../../shared/device/deps-bundle.sh
# The default list of deps-bundle.sh (naming any package replaces it), then ours.
default=$(sed -n '/^  pkgs=(/,/)$/p' "$shared" | tr -d '()' | sed 's/pkgs=//')
# shellcheck disable=SC2086
bash "$shared" "${1:-.deps}" $default libicu-dev libicu72
