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
. "$(dirname "$0")/dummy_batch.sh"
dummy_model_dir "$out" "$config" "$tokenizer"
printf "%6s %8s %6s %10s %10s %14s %16s\n" batch prompt new t_prefill t_total decode_tok/s per_request_tok/s
for b in $batches; do
  t1=$(timed_batch "$out" "$np" "$b" "$prompt" 1 "$@")
  tn=$(timed_batch "$out" "$np" "$b" "$prompt" "$new" "$@")
  python3 -c "
import sys
b, new, t1, tn = $b, $new, $t1, $tn
if tn <= t1:
    sys.exit(f'batch {b}: {new} tokens took no longer than 1 ({tn} s <= {t1} s): too short to time, raise NEW')
agg = b * (new - 1) / (tn - t1)
print(f'{b:6d} {$prompt:8d} {new:6d} {t1:10.3f} {tn:10.3f} {agg:14.1f} {agg / b:16.1f}')"
done
