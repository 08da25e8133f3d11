#!/usr/bin/env bash
# `lockstep make-checkpoint` end to end: a checkpoint written with --seed S loads (hub layout,
# several shards, index) and runs the same model as `--load-format dummy --seed S` (greedy ids
# equal through `lockstep batch` at TP2 x PP2 and at TP1; for a block-fp8 config too, whose
# dummy experts are fp8 codes), and bad input gets a clear error without touching existing files.
# usage: make_checkpoint_test.sh MPIRUN LOCKSTEP FIXTURES_DIR
set -u
mpirun=$1 lockstep=$2 fixtures=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/log" ] && tail -20 "$tmp/log"; exit 1; }

for model in qwen2-tiny qwen3-tiny llama-tiny deepseek-v3-tiny deepseek-v3-fp8-tiny; do
  src=$fixtures/$model
  out=$tmp/$model
  "$lockstep" make-checkpoint --config "$src/config.json" --tokenizer "$src" --output "$out" --seed 11 \
      --max-shard-size 100K >"$tmp/log" 2>&1 || fail "$model: make-checkpoint exited non-zero"
  grep -q "random weights (seed 11)" "$tmp/log" || fail "$model: summary line"
  grep -q "MB (100%)" "$tmp/log" || fail "$model: progress line"
  shards=$(ls "$out"/model-*-of-*.safetensors | wc -l)
  [ "$shards" -ge 2 ] || fail "$model: expected several shards with --max-shard-size 100K, got $shards"
  for f in config.json tokenizer.json tokenizer_config.json model.safetensors.index.json; do
    [ -f "$out/$f" ] || fail "$model: $f missing"
  done
  # Every shard named by the index exists, and every tensor of the fixture is in the index.
  for s in $(jq -r '.weight_map[]' "$out/model.safetensors.index.json" | sort -u); do
    [ -f "$out/$s" ] || fail "$model: index names missing shard $s"
  done
  # (A block-fp8 config's weights are written in 16 bits, the fp8 experts as their codes' values,
  # so without the fixture's *_scale_inv tensors.)
  diff <(jq -r '.weight_map | keys[]' "$src/model.safetensors.index.json" | grep -v '_scale_inv$' | sort) \
       <(jq -r '.weight_map | keys[]' "$out/model.safetensors.index.json" | sort) >/dev/null ||
    fail "$model: tensor names differ from the transformers-written fixture"

  # Same greedy tokens as --load-format dummy with the same seed.
  rm -f "$tmp"/ckpt.jsonl "$tmp"/dummy.jsonl "$tmp"/other.jsonl
  jq -c '{custom_id: "c0", url: "/v1/completions", body: {prompt: .cases[0].prompt_ids, max_tokens: 12, temperature: 0,
          ignore_eos: true, return_token_ids: true}}' "$fixtures/$model.expected.json" >"$tmp/in.jsonl"
  jq -c '{custom_id: "c1", url: "/v1/completions", body: {prompt: .cases[1].prompt_ids, max_tokens: 12, temperature: 0,
          ignore_eos: true, return_token_ids: true}}' "$fixtures/$model.expected.json" >>"$tmp/in.jsonl"
  ids() { jq -c -s 'sort_by(.custom_id) | map(.response.body.choices[0].token_ids)' "$1"; }
  timeout 300 "$mpirun" --oversubscribe -np 4 "$lockstep" batch --model "$out" -tp 2 -pp 2 --kv-cache-memory 2M \
      --input "$tmp/in.jsonl" --output "$tmp/ckpt.jsonl" >"$tmp/log" 2>&1 || fail "$model: batch on the checkpoint"
  timeout 300 "$lockstep" batch --model "$src" --load-format dummy --seed 11 --kv-cache-memory 2M \
      --input "$tmp/in.jsonl" --output "$tmp/dummy.jsonl" >"$tmp/log" 2>&1 || fail "$model: batch with dummy weights"
  a=$(ids "$tmp/ckpt.jsonl") b=$(ids "$tmp/dummy.jsonl")
  [ "$(jq 'flatten | length' <<<"$a")" = 24 ] || fail "$model: expected 2 x 12 tokens, got $a"
  [ "$a" = "$b" ] || fail "$model: checkpoint tokens $a differ from --load-format dummy tokens $b"
  # And a different seed gives a different model.
  timeout 300 "$lockstep" batch --model "$src" --load-format dummy --seed 12 --kv-cache-memory 2M \
      --input "$tmp/in.jsonl" --output "$tmp/other.jsonl" >"$tmp/log" 2>&1 || fail "$model: batch with seed 12"
  [ "$(ids "$tmp/other.jsonl")" != "$a" ] || fail "$model: seeds 11 and 12 gave the same tokens"
  echo "ok $model: $shards shards, tokens equal --load-format dummy"
done

# A float16 config gives F16 tensors; --dtype auto runs them in float16, with the tokens of
# --load-format dummy --dtype half (the same values rounded to fp16).
jq '.torch_dtype = "float16"' "$fixtures/llama-tiny/config.json" >"$tmp/f16.json"
"$lockstep" make-checkpoint --config "$tmp/f16.json" --tokenizer "$fixtures/llama-tiny" --output "$tmp/f16" --seed 11 \
    >"$tmp/log" 2>&1 || fail "float16 make-checkpoint"
head -c 4096 "$tmp"/f16/model-*.safetensors | grep -a -q '"dtype":"F16"' || fail "float16 config: F16 tensors"
head -c 4096 "$tmp"/f16/model-*.safetensors | grep -a -q '"dtype":"BF16"' && fail "float16 config: BF16 tensors"
rm -f "$tmp"/ckpt.jsonl "$tmp"/dummy.jsonl
timeout 300 "$lockstep" batch --model "$tmp/f16" --kv-cache-memory 2M --input "$tmp/in.jsonl" --output "$tmp/ckpt.jsonl" \
    >"$tmp/log" 2>&1 || fail "batch on the float16 checkpoint"
grep -q "model llama (float16)" "$tmp/log" || fail "--dtype auto on a float16 checkpoint runs in float16"
timeout 300 "$lockstep" batch --model "$tmp/f16" --load-format dummy --seed 11 --dtype half --kv-cache-memory 2M \
    --input "$tmp/in.jsonl" --output "$tmp/dummy.jsonl" >"$tmp/log" 2>&1 || fail "batch --dtype half, dummy weights"
a=$(ids "$tmp/ckpt.jsonl") b=$(ids "$tmp/dummy.jsonl")
[ "$(jq 'flatten | length' <<<"$a")" = 24 ] || fail "float16: expected 2 x 12 tokens, got $a"
[ "$a" = "$b" ] || fail "float16 checkpoint tokens $a differ from --load-format dummy --dtype half $b"
echo "ok float16 checkpoint: F16 tensors, run in float16"

# Errors: existing output without --force leaves it alone; --force overwrites.
out=$tmp/qwen2-tiny
before=$(md5sum "$out"/*.safetensors | md5sum)
"$lockstep" make-checkpoint --config "$fixtures/qwen2-tiny/config.json" --tokenizer "$fixtures/qwen2-tiny" \
    --output "$out" --seed 5 >"$tmp/log" 2>&1 && fail "non-empty --output without --force succeeded"
grep -q "is not empty; pass --force" "$tmp/log" || fail "non-empty output message"
[ "$(md5sum "$out"/*.safetensors | md5sum)" = "$before" ] || fail "a refused run changed the existing checkpoint"
"$lockstep" make-checkpoint --config "$fixtures/qwen2-tiny/config.json" --tokenizer "$fixtures/qwen2-tiny" \
    --output "$out" --seed 5 --force >"$tmp/log" 2>&1 || fail "--force"
[ "$(ls "$out"/model-*.safetensors | wc -l)" = 1 ] || fail "--force should replace the old shards (default 2G: one shard)"

# Unsupported architecture.
jq '.architectures = ["MixtralForCausalLM"] | .model_type = "mixtral"' "$fixtures/qwen2-tiny/config.json" >"$tmp/bad.json"
"$lockstep" make-checkpoint --config "$tmp/bad.json" --tokenizer "$fixtures/qwen2-tiny" --output "$tmp/x" \
    >"$tmp/log" 2>&1 && fail "unsupported architecture succeeded"
grep -qi "mixtral" "$tmp/log" || fail "unsupported architecture message should name it"
[ ! -e "$tmp/x" ] || fail "a refused run created the output directory"
# A tokenizer with more tokens than the embedding has rows.
jq '.vocab_size = 16' "$fixtures/qwen2-tiny/config.json" >"$tmp/small.json"
"$lockstep" make-checkpoint --config "$tmp/small.json" --tokenizer "$fixtures/qwen2-tiny" --output "$tmp/x" \
    >"$tmp/log" 2>&1 && fail "tokenizer larger than vocab_size succeeded"
grep -q "vocab_size is 16" "$tmp/log" || fail "vocab size message"
# A bad shard size.
"$lockstep" make-checkpoint --config "$fixtures/qwen2-tiny/config.json" --tokenizer "$fixtures/qwen2-tiny" \
    --output "$tmp/x" --max-shard-size lots >"$tmp/log" 2>&1 && fail "--max-shard-size lots succeeded"
grep -q "not a size" "$tmp/log" || fail "shard size message"
echo "PASS"
