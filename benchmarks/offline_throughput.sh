#!/usr/bin/env bash
# Offline throughput of `lockstep batch` with random weights at a real model's shapes
# (--load-format dummy), as vLLM's benchmark_throughput reports it: NUM_PROMPTS requests of
# INPUT_LEN distinct prompt tokens and OUTPUT_LEN new tokens each (EOS ignored), all submitted at
# once, the engine batching as many as --max-num-seqs and the KV cache allow; the time is the
# batch's own (weights loaded, first request to last result).
#   output tok/s = NUM_PROMPTS * OUTPUT_LEN / time;  total tok/s adds the prompt tokens.
# usage: offline_throughput.sh LOCKSTEP CONFIG_JSON TOKENIZER_DIR OUT_DIR NP NUM_PROMPTS [INPUT_LEN OUTPUT_LEN]
#          [-- lockstep flags]          (defaults 1024 1024; MAX_NUM_SEQS=256 in the environment;
#          greedy unless SAMPLING='{"temperature": 1.0}' or the like: see dummy_batch.sh)
set -euo pipefail
lockstep=$1 config=$2 tokenizer=$3 out=$4 np=$5 prompts=$6
input_len=${7:-1024} output_len=${8:-1024}
shift 6; [ $# -ge 2 ] && [ "$1" != -- ] && shift 2; [ "${1:-}" = -- ] && shift
. "$(dirname "$0")/dummy_batch.sh"
dummy_model_dir "$out" "$config" "$tokenizer"
t=$(timed_batch "$out" "$np" "$prompts" "$input_len" "$output_len" "$@")
python3 -c "
n, i, o, t = $prompts, $input_len, $output_len, $t
print(f'{\"prompts\":>8} {\"input_len\":>9} {\"output_len\":>10} {\"time_s\":>9} {\"requests/s\":>10} {\"total_tok/s\":>12} {\"output_tok/s\":>12}')
print(f'{n:8d} {i:9d} {o:10d} {t:9.3f} {n / t:10.2f} {n * (i + o) / t:12.1f} {n * o / t:12.1f}')"
