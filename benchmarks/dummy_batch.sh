# Sourced by the offline benchmarks (decode_bench.sh, offline_throughput.sh): `lockstep batch`
# runs with random weights at a real model's shapes (--load-format dummy).
#   dummy_model_dir OUT CONFIG_JSON TOKENIZER_DIR   -> OUT/model (config + tokenizer files)
#   timed_batch OUT NP B PROMPT MAX_TOKENS [lockstep flags] -> prints the seconds the batch took
#     (runs the binary in the caller's $lockstep on NP ranks; MAX_NUM_SEQS, default 256)
# B requests of PROMPT distinct token ids (no prefix-cache hits), max_tokens each, EOS ignored,
# greedy unless SAMPLING holds the requests' sampling fields as a JSON object (vLLM's
# benchmark_throughput samples: SAMPLING='{"temperature": 1.0}'; DeepSeek-R1's recommended
# settings: SAMPLING='{"temperature": 0.6, "top_p": 0.95}').
# Every request must come back with MAX_TOKENS tokens, or the run counts as failed.

dummy_model_dir() {
  mkdir -p "$1/model"
  cp "$2" "$1/model/config.json"
  cp "$3"/tokenizer.json "$3"/tokenizer_config.json "$1/model/"
}

timed_batch() {
  local out=$1 np=$2 b=$3 prompt=$4 max=$5
  shift 5
  local f=$out/req_${b}_${prompt}_${max}
  SAMPLING=${SAMPLING:-} python3 -c "
import json, os
b, p, m = $b, $prompt, $max
vocab = json.load(open('$out/model/config.json'))['vocab_size']
sampling = json.loads(os.environ['SAMPLING'] or '{\"temperature\": 0}')
for i in range(b):
    ids = [(i * 7919 + j * 104729 + 17) % vocab for j in range(p)]
    body = {'prompt': ids, 'max_tokens': m, 'temperature': 0, 'ignore_eos': True}
    body.update(sampling)
    print(json.dumps({'custom_id': f'r{i}', 'url': '/v1/completions', 'body': body}))
" >"$f.jsonl"
  rm -f "$f.out"
  mpirun --bind-to none -np "$np" -x LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}" -x NCCL_NVLS_ENABLE="${NCCL_NVLS_ENABLE:-0}" \
    -x LOCKSTEP_GPU_SAMPLING="${LOCKSTEP_GPU_SAMPLING:-1}" \
    "$lockstep" batch --model "$out/model" --load-format dummy --input "$f.jsonl" --output "$f.out" \
    --max-num-seqs "${MAX_NUM_SEQS:-256}" "$@" >"$f.log" 2>&1 || { tail -20 "$f.log" >&2; return 1; }
  python3 -c "
import json, sys
rows = [json.loads(l) for l in open('$f.out')]
ok = lambda r: r['response']['status_code'] == 200 and r['response']['body']['usage']['completion_tokens'] == $max
short = [r['custom_id'] for r in rows if not ok(r)]
if len(rows) != $b or short:
    sys.exit(f'$f.out: {len(rows)} of $b requests, {len(short)} without $max tokens: {short[:5]}')
" || return 1
  grep -o 'generated in [0-9.]* s' "$f.log" | awk '{print $3}'
}
