#!/usr/bin/env bash
# Decode throughput of `lockstep batch` with random weights at a real model's shapes
# (--load-format dummy): for each batch size B, B requests of PROMPT distinct prompt tokens
# run once with max_tokens 1 (prefill) and once with max_tokens NEW; the difference is decode:
#   decode tok/s (aggregate) = B * (NEW - 1) / (t_new - t_1),  per request = that / B.
# usage: decode_bench.sh LOCKSTEP CONFIG_JSON TOKENIZER_DIR OUT_DIR NP "B1 B2 ..." [PROMPT NEW] [-- lockstep flags]
set -euo pipefail
lockstep=$1 config=$2 tokenizer=$3 out=$4 np=$5 batches=$6
prompt=${7:-128} new=${8:-256}
shift 6; [ $# -ge 2 ] && [ "$1" != -- ] && shift 2; [ "${1:-}" = -- ] && shift
mkdir -p "$out/model"
cp "$config" "$out/model/config.json"
cp "$tokenizer"/tokenizer.json "$tokenizer"/tokenizer_config.json "$out/model/"
run() {  # B MAX_TOKENS -> seconds
  local b=$1 max=$2 f=$out/req_$1_$2
  shift 2
  python3 -c "
import json, sys
b, p, m = $b, $prompt, $max
vocab = json.load(open('$config'))['vocab_size']
for i in range(b):
    ids = [(i * 7919 + j * 104729 + 17) % vocab for j in range(p)]  # distinct: no prefix-cache hits
    print(json.dumps({'custom_id': f'r{i}', 'url': '/v1/completions',
                      'body': {'prompt': ids, 'max_tokens': m, 'temperature': 0, 'ignore_eos': True}}))
" >"$f.jsonl"
  rm -f "$f.out"
  mpirun --bind-to none -np "$np" -x LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}" -x NCCL_NVLS_ENABLE="${NCCL_NVLS_ENABLE:-0}" "$lockstep" batch --model "$out/model" \
    --load-format dummy --input "$f.jsonl" --output "$f.out" --max-num-seqs 256 "$@" >"$f.log" 2>&1 ||
    { tail -20 "$f.log" >&2; return 1; }
  grep -o 'generated in [0-9.]* s' "$f.log" | awk '{print $3}'
}
printf "%6s %8s %6s %10s %10s %14s %16s\n" batch prompt new t_prefill t_total decode_tok/s per_request_tok/s
for b in $batches; do
  t1=$(run "$b" 1 "$@")
  tn=$(run "$b" "$new" "$@")
  python3 -c "
b, new, t1, tn = $b, $new, $t1, $tn
agg = b * (new - 1) / (tn - t1)
print(f'{b:6d} {$prompt:8d} {new:6d} {t1:10.3f} {tn:10.3f} {agg:14.1f} {agg / b:16.1f}')"
done
