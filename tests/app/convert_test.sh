#!/usr/bin/env bash
# `lockstep convert` end to end: a fixture rewritten as model.h5 (bf16 and block-fp8 with its
# scales) runs the same numbers as the safetensors it came from (greedy ids and log-probabilities,
# bit for bit, through `lockstep batch` at TP2 x PP2, each rank reading its slices of model.h5);
# --load-format auto picks model.h5, and bad input gets a clear error without touching existing
# files.
# usage: convert_test.sh MPIRUN LOCKSTEP FIXTURES_DIR
set -u
mpirun=$1 lockstep=$2 fixtures=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/log" ] && tail -20 "$tmp/log"; exit 1; }

for model in qwen2-tiny deepseek-v3-fp8-tiny; do
  src=$fixtures/$model
  out=$tmp/$model
  "$lockstep" convert --model "$src" --output "$out" >"$tmp/log" 2>&1 || fail "$model: convert exited non-zero"
  grep -q "tensors (100%)" "$tmp/log" || fail "$model: progress line"
  n=$(jq '.weight_map | keys | length' "$src/model.safetensors.index.json")
  grep -q "model.h5: $n tensors" "$tmp/log" || fail "$model: summary should count the index's $n tensors"
  for f in config.json tokenizer.json tokenizer_config.json model.h5; do
    [ -f "$out/$f" ] || fail "$model: $f missing"
  done
  ls "$out" | grep -q -E 'safetensors|partial' && fail "$model: safetensors or a partial file in the output"

  rm -f "$tmp"/h5.jsonl "$tmp"/st.jsonl
  for c in 0 1; do
    jq -c --argjson c $c '{custom_id: "c\($c)", url: "/v1/completions", body: {prompt: .cases[$c].prompt_ids,
            max_tokens: 10, temperature: 0, ignore_eos: true, return_token_ids: true, logprobs: 2}}' \
        "$fixtures/$model.expected.json"
  done >"$tmp/in.jsonl"
  # The ids and log-probabilities of both requests.
  numbers() { jq -c -s 'sort_by(.custom_id) | map(.response.body.choices[0] | [.token_ids, .logprobs.token_logprobs])' "$1"; }
  timeout 300 "$mpirun" --oversubscribe -np 4 "$lockstep" batch --model "$out" -tp 2 -pp 2 --kv-cache-memory 2M \
      --input "$tmp/in.jsonl" --output "$tmp/h5.jsonl" >"$tmp/log" 2>&1 || fail "$model: batch on model.h5"
  timeout 300 "$mpirun" --oversubscribe -np 4 "$lockstep" batch --model "$src" -tp 2 -pp 2 --kv-cache-memory 2M \
      --input "$tmp/in.jsonl" --output "$tmp/st.jsonl" >"$tmp/log" 2>&1 || fail "$model: batch on the safetensors"
  a=$(numbers "$tmp/h5.jsonl") b=$(numbers "$tmp/st.jsonl")
  [ "$(jq '.[0][0] | length' <<<"$a")" = 10 ] || fail "$model: expected 10 tokens, got $a"
  [ "$a" = "$b" ] || fail "$model: model.h5 gave $a, the safetensors $b"
  echo "ok $model: $n tensors; TP2 x PP2 on model.h5 equals TP2 x PP2 on the safetensors (ids and log-probabilities)"
done

# --load-format safetensors on the converted directory finds none: the runs above read model.h5.
out=$tmp/qwen2-tiny
timeout 120 "$lockstep" batch --model "$out" --load-format safetensors --kv-cache-memory 2M --input "$tmp/in.jsonl" \
    --output "$tmp/x.jsonl" >"$tmp/log" 2>&1 && fail "--load-format safetensors without safetensors succeeded"
# --load-format hdf5 where there is no model.h5: a clear error.
timeout 120 "$lockstep" batch --model "$fixtures/qwen2-tiny" --load-format hdf5 --kv-cache-memory 2M \
    --input "$tmp/in.jsonl" --output "$tmp/y.jsonl" >"$tmp/log" 2>&1 && fail "--load-format hdf5 without model.h5 succeeded"
grep -q "model.h5 does not exist; \`lockstep convert\` writes it" "$tmp/log" || fail "--load-format hdf5 without model.h5: message"

# An existing model.h5 without --force is left alone; --force replaces it.
before=$(md5sum "$out/model.h5")
"$lockstep" convert --model "$fixtures/qwen2-tiny" --output "$out" >"$tmp/log" 2>&1 && fail "existing model.h5 without --force"
grep -q "exists; pass --force" "$tmp/log" || fail "existing model.h5: message"
[ "$(md5sum "$out/model.h5")" = "$before" ] || fail "a refused convert changed model.h5"
"$lockstep" convert --model "$fixtures/qwen2-tiny" --output "$out" --force >"$tmp/log" 2>&1 || fail "--force"
# The output may not be the source; a directory without a checkpoint is refused.
"$lockstep" convert --model "$fixtures/qwen2-tiny" --output "$fixtures/qwen2-tiny" >"$tmp/log" 2>&1 &&
  fail "--output = --model succeeded"
grep -q "another directory than --model" "$tmp/log" || fail "--output = --model: message"
mkdir -p "$tmp/empty" && cp "$fixtures/qwen2-tiny/config.json" "$tmp/empty/"
"$lockstep" convert --model "$tmp/empty" --output "$tmp/none" >"$tmp/log" 2>&1 && fail "convert without safetensors succeeded"
grep -q "lockstep convert: error:" "$tmp/log" || fail "no safetensors: message"
[ -e "$tmp/none/model.h5" ] && fail "a failed convert left a model.h5"
echo "ok errors: existing output, --force, same directory, no checkpoint"
