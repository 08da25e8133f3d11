#!/usr/bin/env bash
# `lockstep batch` end to end on TP2 x PP2 (mpirun -np 4) with the tiny transformers fixtures:
# greedy token ids equal transformers', text prompts go through the checkpoint's tokenizer,
# stop strings and stop token ids end choices with the right reasons, n > 1 gives n choices,
# logit_bias moves greedy choices (and bad biases are refused),
# malformed lines get error lines, --resume skips finished custom_ids and redoes missing ones
# (and the one an interrupted run left half-written),
# an existing output is never overwritten by accident, an output that cannot be written stops
# the job with the reason (before loading, or at the first result on a full disk), --dtype half / float32, and prompt
# log-probabilities; at debug level, rank 0's host time a step; generation_config.json defaults;
# a rank that alone cannot read its generation config, its model directory or its stage's tensors
# ends every rank with the reason;
# the same results with the step thread GPUs use (LOCKSTEP_BATCH_STEP_THREAD=1);
# the warning for a rank bound to one CPU.
# usage: batch_test.sh MPIRUN LOCKSTEP FIXTURES_DIR
set -u
mpirun=$1 lockstep=$2 fixtures=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/log" ] && tail -20 "$tmp/log"; exit 1; }
model=$fixtures/llama-tiny
exp=$fixtures/llama-tiny.expected.json
run() { timeout 300 "$mpirun" --oversubscribe -np 4 "$lockstep" batch --model "$model" -tp 2 -pp 2 \
          --kv-cache-memory 2M --max-num-batched-tokens 16 --input "$tmp/in.jsonl" --output "$tmp/out.jsonl" "$@" >"$tmp/log" 2>&1; }

# Requests: the three fixture prompts as token ids, the first also as text; stop cases; n=2; bad lines.
for i in 0 1 2; do
  jq -c --argjson i "$i" '{custom_id: ("ids-\($i)"), method: "POST", url: "/v1/completions",
        body: {prompt: .cases[$i].prompt_ids, max_tokens: 8, temperature: 0, ignore_eos: true, return_token_ids: true}}' "$exp"
done >"$tmp/in.jsonl"
jq -c '{custom_id: "text-0", url: "/v1/completions", body: {prompt: .cases[0].prompt, max_tokens: 8, temperature: 0,
       ignore_eos: true, return_token_ids: true}}' "$exp" >>"$tmp/in.jsonl"
jq -c '{custom_id: "stop-id", url: "/v1/completions", body: {prompt: .cases[0].prompt_ids, max_tokens: 8, temperature: 0,
       stop_token_ids: [.cases[0].greedy_ids[2]], return_token_ids: true}}' "$exp" >>"$tmp/in.jsonl"
jq -c '{custom_id: "stop-str", url: "/v1/completions", body: {prompt: .cases[0].prompt_ids, max_tokens: 8, temperature: 0,
       stop: [" m"], return_token_ids: true}}' "$exp" >>"$tmp/in.jsonl"
jq -c '{custom_id: "n2", url: "/v1/completions", body: {prompt: .cases[1].prompt_ids, max_tokens: 4, n: 2, seed: 7,
       temperature: 1.0}}' "$exp" >>"$tmp/in.jsonl"
echo '{"prompt": [1, 2, 3], "max_tokens": 3}' >>"$tmp/in.jsonl"
echo 'not json at all' >>"$tmp/in.jsonl"
echo '{"custom_id": "bad-url", "url": "/v1/embeddings", "body": {"input": "x"}}' >>"$tmp/in.jsonl"
echo '{"custom_id": "bad-id", "url": "/v1/completions", "body": {"prompt": [999999], "max_tokens": 2}}' >>"$tmp/in.jsonl"
# logit_bias: +100 on one id makes greedy pick it every step; -100 on the greedy first token
# moves it; ids outside the vocabulary and keys that are not ids are refused.
jq -c '{custom_id: "bias-up", url: "/v1/completions", body: {prompt: .cases[0].prompt_ids, max_tokens: 4, temperature: 0,
       ignore_eos: true, return_token_ids: true, logit_bias: {"42": 100}}}' "$exp" >>"$tmp/in.jsonl"
jq -c '{custom_id: "bias-down", url: "/v1/completions", body: {prompt: .cases[0].prompt_ids, max_tokens: 1,
       temperature: 0, ignore_eos: true, return_token_ids: true,
       logit_bias: {(.cases[0].greedy_ids[0] | tostring): -100}}}' "$exp" >>"$tmp/in.jsonl"
echo '{"custom_id": "bias-bad-id", "url": "/v1/completions", "body": {"prompt": [1, 2], "max_tokens": 2, "logit_bias": {"300": 1}}}' >>"$tmp/in.jsonl"
echo '{"custom_id": "bias-bad-key", "url": "/v1/completions", "body": {"prompt": [1, 2], "max_tokens": 2, "logit_bias": {"x7": 1}}}' >>"$tmp/in.jsonl"

LOCKSTEP_LOG_LEVEL=debug run || fail "batch exited non-zero"
cp "$tmp/log" "$tmp/log.auto"
grep -q "^\[batch\] done: 10 succeeded, 5 failed, 0 skipped" "$tmp/log" || fail "summary line"
# The last progress line (after carriage returns): every request done, nothing left.
tr '\r' '\n' <"$tmp/log" | grep -qE "^\[batch\] 10/10 requests, [0-9.]+ tok/s, ETA 00:00:00$" || fail "final progress line"
# At debug level rank 0 logs its host time a step by phase (HostStepClock) when the engine stops.
grep -qE "host time a step, rank 0 \([0-9]+ steps\): between steps \(the caller\) [0-9.]+ us, schedule [0-9.]+ us" \
  "$tmp/log" || fail "no host-time line at debug level"
[ "$(wc -l <"$tmp/out.jsonl")" -eq 15 ] || fail "expected one output line per input line"
get() { jq -c --arg id "$1" "select(.custom_id == \$id) | .response.body$2" "$tmp/out.jsonl"; }
for i in 0 1 2; do
  want=$(jq -c --argjson i "$i" '.cases[$i].greedy_ids' "$exp")
  [ "$(get "ids-$i" '.choices[0].token_ids')" = "$want" ] || fail "ids-$i: tokens differ from transformers ($want)"
done
[ "$(get text-0 '.choices[0].token_ids')" = "$(jq -c '.cases[0].greedy_ids' "$exp")" ] || fail "text prompt tokens"
[ "$(get text-0 '.choices[0].text')" = "$(jq -c '.cases[0].greedy_text' "$exp")" ] || fail "decoded text"
[ "$(get text-0 '.prompt_token_ids')" = "$(jq -c '.cases[0].prompt_ids' "$exp")" ] || fail "text prompt tokenization"
[ "$(get stop-id '.choices[0].finish_reason')" = '"stop"' ] || fail "stop_token_ids finish_reason"
[ "$(get stop-id '.choices[0].stop_reason')" = "$(jq -c '.cases[0].greedy_ids[2]' "$exp")" ] || fail "stop_reason id"
[ "$(get stop-id '.choices[0].token_ids | length')" = 3 ] || fail "stop_token_ids length"
[ "$(get stop-str '.choices[0].finish_reason')" = '"stop"' ] || fail "stop string finish_reason"
[ "$(get stop-str '.choices[0].stop_reason')" = '" m"' ] || fail "stop string stop_reason"
want_text=$(jq -r '.cases[0].greedy_text | split(" m")[0]' "$exp")
[ "$(get stop-str '.choices[0].text' | jq -r .)" = "$want_text" ] || fail "text not cut before the stop string"
[ "$(get n2 '.choices | length')" = 2 ] || fail "n=2 choices"
[ "$(get n2 '.usage.completion_tokens')" = 8 ] || fail "n=2 usage"
[ "$(get line-8 '.usage.prompt_tokens')" = 3 ] || fail "plain prompt line"
grep -q '"custom_id":"line-9".*"status_code":400.*not valid JSON' "$tmp/out.jsonl" || fail "malformed line"
grep -q '"custom_id":"bad-url".*"status_code":400' "$tmp/out.jsonl" || fail "bad url"
grep -q '"custom_id":"bad-id".*outside the vocabulary' "$tmp/out.jsonl" || fail "bad token id"
[ "$(get bias-up '.choices[0].token_ids')" = "[42,42,42,42]" ] || fail "logit_bias +100"
first=$(get bias-down '.choices[0].token_ids[0]')
[ -n "$first" ] && [ "$first" != "$(jq -c '.cases[0].greedy_ids[0]' "$exp")" ] || fail "logit_bias -100 ($first)"
grep -q '"custom_id":"bias-bad-id".*token id 300 in .logit_bias. is outside the vocabulary' "$tmp/out.jsonl" ||
  fail "logit_bias id outside the vocabulary"
grep -q '"custom_id":"bias-bad-key".*must map token ids to numbers' "$tmp/out.jsonl" || fail "logit_bias key"

# The step thread GPUs use, forced here: the same results (a stop string ends its choice a step
# later on the engine's side, but the choice's text and tokens are the same).
mv "$tmp/out.jsonl" "$tmp/out.inline.jsonl"
LOCKSTEP_BATCH_STEP_THREAD=1 run || fail "batch with LOCKSTEP_BATCH_STEP_THREAD=1 exited non-zero"
results() { jq -cS 'del(.id, .response.request_id, .response.body.id, .response.body.created)' "$1" | sort; }
diff <(results "$tmp/out.inline.jsonl") <(results "$tmp/out.jsonl") >"$tmp/thread.diff" ||
  { cat "$tmp/thread.diff"; fail "results differ with the step thread"; }
grep -q "^\[batch\] done: 10 succeeded, 5 failed, 0 skipped" "$tmp/log" || fail "summary line with the step thread"

# Resume: nothing left to do; then drop two results and only those run again.
run --resume || fail "resume exited non-zero"
grep -q "0 succeeded, 0 failed, 15 skipped" "$tmp/log" || fail "resume should skip all 15 lines already answered"
grep -v -e '"custom_id":"ids-1"' -e '"custom_id":"n2"' "$tmp/out.jsonl" >"$tmp/partial" && mv "$tmp/partial" "$tmp/out.jsonl"
run --resume || fail "second resume"
grep -q "2 succeeded, 0 failed, 13 skipped" "$tmp/log" || fail "resume should redo exactly the missing two"
[ "$(wc -l <"$tmp/out.jsonl")" -eq 15 ] || fail "resume must not duplicate lines"
[ "$(get ids-1 '.choices[0].token_ids')" = "$(jq -c '.cases[1].greedy_ids' "$exp")" ] || fail "resumed result"
# A run killed while writing a result leaves an incomplete last line: --resume removes it (with a
# warning) and runs that request again, so the output stays one JSON object a line.
grep -v '"custom_id":"ids-2"' "$tmp/out.jsonl" >"$tmp/partial"
grep '"custom_id":"ids-2"' "$tmp/out.jsonl" | head -c 60 >>"$tmp/partial" && mv "$tmp/partial" "$tmp/out.jsonl"
run --resume || fail "resume after an incomplete last line"
grep -q "ended in an incomplete line (60 bytes" "$tmp/log" || fail "incomplete-line warning"
grep -q "1 succeeded, 0 failed, 14 skipped" "$tmp/log" || fail "the cut request should run again"
[ "$(wc -l <"$tmp/out.jsonl")" -eq 15 ] || fail "15 lines after resuming past an incomplete line"
jq -c . "$tmp/out.jsonl" >/dev/null || fail "every line must be valid JSON after the resume"
[ "$(get ids-2 '.choices[0].token_ids')" = "$(jq -c '.cases[2].greedy_ids' "$exp")" ] || fail "the cut request's result"

run; [ $? -eq 2 ] || fail "an existing output must not be overwritten without --resume"
grep -q "already holds results; pass --resume" "$tmp/log" || fail "overwrite message"

# An output that cannot be written: a missing directory is refused before the model loads; a
# full disk (/dev/full) ends the whole job with the reason at the first result, instead of
# computing results it cannot keep (every rank stops: run's timeout would catch a hang).
rm -f "$tmp/out.jsonl"
timeout 300 "$mpirun" --oversubscribe -np 4 "$lockstep" batch --model "$model" -tp 2 -pp 2 --kv-cache-memory 2M \
  --input "$tmp/in.jsonl" --output "$tmp/no/such/dir/out.jsonl" >"$tmp/log" 2>&1
[ $? -eq 2 ] || fail "an output in a missing directory must be refused"
grep -q "cannot write --output $tmp/no/such/dir/out.jsonl: No such file or directory" "$tmp/log" || fail "unwritable message"
grep -q "loading weights" "$tmp/log" && fail "an unwritable output must be found before the weights load"
timeout 300 "$mpirun" --oversubscribe -np 4 "$lockstep" batch --model "$model" -tp 2 -pp 2 --kv-cache-memory 2M \
  --input "$tmp/in.jsonl" --output /dev/full >"$tmp/log" 2>&1
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "a full disk must end the job with an error, not hang or succeed (rc $rc)"
grep -q "cannot write --output /dev/full: No space left on device; the results written before are kept" "$tmp/log" ||
  fail "full-disk message"
grep -q "^\[batch\] done:" "$tmp/log" && fail "a job that lost results must not report itself done"

# A custom_id given twice: refused before the model loads, nothing written.
cp "$tmp/in.jsonl" "$tmp/all.jsonl" && rm "$tmp/out.jsonl"
{ head -2 "$tmp/all.jsonl"; head -1 "$tmp/all.jsonl"; } >"$tmp/in.jsonl"
run; [ $? -eq 2 ] || fail "a repeated custom_id must be refused"
grep -q 'custom_id "ids-0" is on lines 1 and 3 of --input; custom_ids must be unique' "$tmp/log" || fail "repeat message"
grep -q "loading weights" "$tmp/log" && fail "a repeated custom_id must be found before the weights load"
[ ! -e "$tmp/out.jsonl" ] || fail "a refused input wrote results"
mv "$tmp/all.jsonl" "$tmp/in.jsonl"

# Startup checks as vLLM's: --max-model-len past the model's max_position_embeddings (512 here)
# needs LOCKSTEP_ALLOW_LONG_MAX_MODEL_LEN=1; --gpu-memory-utilization must be in (0, 1].
rm -f "$tmp/out.jsonl"
run --max-model-len 600; [ $? -ne 0 ] || fail "--max-model-len past max_position_embeddings was accepted"
grep -q "max-model-len 600 is greater than the model's max_position_embeddings (512" "$tmp/log" || fail "long max-model-len message"
[ ! -s "$tmp/out.jsonl" ] || fail "a refused --max-model-len wrote results"
LOCKSTEP_ALLOW_LONG_MAX_MODEL_LEN=1 run --max-model-len 600 ||
  fail "LOCKSTEP_ALLOW_LONG_MAX_MODEL_LEN=1 should allow it"
grep -q "max model len 600" "$tmp/log" || fail "the allowed --max-model-len is used"
rm -f "$tmp/out.jsonl"
run --gpu-memory-utilization 1.5; [ $? -ne 0 ] || fail "--gpu-memory-utilization 1.5 was accepted"
grep -q "gpu-memory-utilization 1.5 is not in (0, 1]" "$tmp/log" || fail "gpu-memory-utilization message"

# deepseek_v3's block-fp8 checkpoint through the app: its quantization_config's 16x16 blocks reach
# the weight reader (other blocks would not fit its scales), greedy ids as transformers'; an fp8
# --kv-cache-dtype is refused for deepseek_v3 before the model loads.
ds=$fixtures/deepseek-v3-fp8-tiny
jq -c '{custom_id: "fp8", url: "/v1/completions", body: {prompt: .cases[0].prompt_ids, max_tokens: 8, temperature: 0,
        ignore_eos: true, return_token_ids: true}}' "$fixtures/deepseek-v3-fp8-tiny.expected.json" >"$tmp/ds.jsonl"
rm -f "$tmp/ds_out.jsonl"
timeout 300 "$mpirun" --oversubscribe -np 4 "$lockstep" batch --model "$ds" -tp 2 -pp 2 --kv-cache-memory 2M \
  --input "$tmp/ds.jsonl" --output "$tmp/ds_out.jsonl" >"$tmp/log" 2>&1 || fail "deepseek_v3 fp8 checkpoint: batch failed"
[ "$(jq -c '.response.body.choices[0].token_ids' "$tmp/ds_out.jsonl")" = \
  "$(jq -c '.cases[0].greedy_ids' "$fixtures/deepseek-v3-fp8-tiny.expected.json")" ] ||
  fail "deepseek_v3 fp8 checkpoint: tokens differ from transformers'"
rm -f "$tmp/ds_out.jsonl"
timeout 300 "$lockstep" batch --model "$ds" --kv-cache-memory 2M --kv-cache-dtype fp8 --input "$tmp/ds.jsonl" \
  --output "$tmp/ds_out.jsonl" >"$tmp/log" 2>&1 && fail "deepseek_v3 with --kv-cache-dtype fp8 was accepted"
grep -q "kv-cache-dtype fp8: deepseek_v3's latent cache is kept in the model's dtype" "$tmp/log" ||
  fail "deepseek_v3 --kv-cache-dtype fp8: message"
[ ! -s "$tmp/ds_out.jsonl" ] || fail "a refused --kv-cache-dtype wrote results"

# --dtype: auto runs this bf16 checkpoint in bfloat16; half in float16 (weights converted as they
# load), with the same greedy ids as transformers here; float32 is refused before loading.
grep -q "model llama (bfloat16)" "$tmp/log.auto" || fail "--dtype auto on a bf16 checkpoint: bfloat16"
for i in 0 1 2; do
  jq -c --argjson i "$i" '{custom_id: ("ids-\($i)"), url: "/v1/completions",
        body: {prompt: .cases[$i].prompt_ids, max_tokens: 8, temperature: 0, ignore_eos: true, return_token_ids: true}}' "$exp"
done >"$tmp/in.jsonl"
rm -f "$tmp/out.jsonl"
run --dtype half || fail "--dtype half exited non-zero"
grep -q "model llama (float16)" "$tmp/log" || fail "--dtype half: the model runs in float16"
for i in 0 1 2; do
  want=$(jq -c --argjson i "$i" '.cases[$i].greedy_ids' "$exp")
  [ "$(get "ids-$i" '.choices[0].token_ids')" = "$want" ] || fail "--dtype half, ids-$i: tokens differ from transformers ($want)"
done
# Prompt log-probabilities (echo with logprobs; vLLM's prompt_logprobs): scoring the prompt P + G
# (G: P's greedy continuation) gives G's tokens the log-probabilities they had when generated.
jq -c '{custom_id: "gen", url: "/v1/completions", body: {prompt: .cases[0].prompt_ids, max_tokens: 4, temperature: 0,
       ignore_eos: true, logprobs: 2, return_token_ids: true}}' "$exp" >"$tmp/in.jsonl"
rm -f "$tmp/out.jsonl"
run || fail "prompt logprobs: the generating run"
plen=$(jq '.cases[0].prompt_ids | length' "$exp")
gen_ids=$(get gen '.choices[0].token_ids') gen_lps=$(get gen '.choices[0].logprobs.token_logprobs')
jq -c --argjson g "$gen_ids" '{custom_id: "echo", url: "/v1/completions", body: {prompt: (.cases[0].prompt_ids + $g[0:3]),
       max_tokens: 1, temperature: 0, ignore_eos: true, echo: true, logprobs: 2, return_token_ids: true}}' "$exp" >"$tmp/in.jsonl"
jq -c --argjson g "$gen_ids" '{custom_id: "plp", url: "/v1/completions", body: {prompt: (.cases[0].prompt_ids + $g[0:3]),
       max_tokens: 1, temperature: 0, ignore_eos: true, prompt_logprobs: 3}}' "$exp" >>"$tmp/in.jsonl"
jq -c --argjson g "$gen_ids" '{custom_id: "chat-plp", url: "/v1/chat/completions", body: {messages: [{role: "user",
       content: "hello"}], max_tokens: 1, temperature: 0, prompt_logprobs: 1, return_token_ids: true}}' "$exp" >>"$tmp/in.jsonl"
rm -f "$tmp/out.jsonl"
run || fail "prompt logprobs: the scoring run"
close() { jq -n --argjson a "$1" --argjson b "$2" '($a - $b) | fabs < 1e-4' | grep -q true; }
echo_lps=$(get echo '.choices[0].logprobs.token_logprobs')
[ "$(jq 'length' <<<"$echo_lps")" = $((plen + 4)) ] || fail "echo + logprobs: one entry per prompt and generated token"
[ "$(jq '.[0]' <<<"$echo_lps")" = null ] || fail "echo + logprobs: the first prompt token has no log-probability"
[ "$(jq '.choices[0].logprobs.top_logprobs[0]' <<<"$(get echo '')")" = null ] || fail "echo: first top_logprobs null"
for k in 0 1 2 3; do
  close "$(jq ".[$((plen + k))]" <<<"$echo_lps")" "$(jq ".[$k]" <<<"$gen_lps")" ||
    fail "echo + logprobs: token $k of the continuation scored $(jq ".[$((plen + k))]" <<<"$echo_lps"), generated with $(jq ".[$k]" <<<"$gen_lps")"
done
[ "$(get echo '.choices[0].token_ids[0]')" = "$(jq '.[3]' <<<"$gen_ids")" ] || fail "echo: the generated token"
[ "$(get echo '.choices[0].text | length > 0')" = true ] || fail "echo: text"
plp=$(get plp '.choices[0].prompt_logprobs')
[ "$(jq 'length' <<<"$plp")" = $((plen + 3)) ] && [ "$(jq '.[0]' <<<"$plp")" = null ] || fail "prompt_logprobs: one per prompt token, the first null"
for k in 0 1 2; do
  id=$(jq ".[$k]" <<<"$gen_ids")
  close "$(jq ".[$((plen + k))][\"$id\"].logprob" <<<"$plp")" "$(jq ".[$k]" <<<"$gen_lps")" || fail "prompt_logprobs: token $k"
  [ "$(jq ".[$((plen + k))][\"$id\"].rank >= 1" <<<"$plp")" = true ] || fail "prompt_logprobs: rank"
done
[ "$(jq '[.[1:][] | length] | min >= 3' <<<"$plp")" = true ] || fail "prompt_logprobs: 3 top entries besides the token"
[ "$(get plp '.choices[0].logprobs')" = null ] || fail "prompt_logprobs alone: no logprobs field"
[ "$(get chat-plp '.prompt_logprobs | length')" = "$(get chat-plp '.prompt_token_ids | length')" ] ||
  fail "chat prompt_logprobs: one per prompt token, at the response's top level"

rm -f "$tmp/out.jsonl"
run --dtype float32; [ $? -ne 0 ] || fail "--dtype float32 was accepted"
grep -q -e "--dtype float32 is not supported" "$tmp/log" || fail "--dtype float32 message"
grep -q "loading weights" "$tmp/log" && fail "--dtype float32: weights were loaded before the refusal"
[ ! -s "$tmp/out.jsonl" ] || fail "a refused --dtype wrote results"
# --kv-cache-dtype (vLLM's): fp8 runs with k and v rounded to e4m3 (the CPU backend keeps fp32
# values; tests/model/model_parity_test.cc checks the logits); a name vLLM does not use is refused.
for i in 0 1 2; do
  jq -c --argjson i "$i" '{custom_id: ("ids-\($i)"), url: "/v1/completions",
        body: {prompt: .cases[$i].prompt_ids, max_tokens: 8, temperature: 0, ignore_eos: true, return_token_ids: true}}' "$exp"
done >"$tmp/in.jsonl"
rm -f "$tmp/out.jsonl"
run --kv-cache-dtype fp8 || fail "--kv-cache-dtype fp8 exited non-zero"
grep -q "tokens (fp32 values rounded to fp8_e4m3)" "$tmp/log" || fail "--kv-cache-dtype fp8: the log names the cache's values"
grep -q "3 succeeded, 0 failed" "$tmp/log" || fail "--kv-cache-dtype fp8: every request succeeds"
rm -f "$tmp/out.jsonl"
run --kv-cache-dtype int8; [ $? -ne 0 ] || fail "--kv-cache-dtype int8 was accepted"
grep -q -e "--kv-cache-dtype: int8 not in {auto,bfloat16,fp8,fp8_e4m3,fp8_e5m2}" "$tmp/log" || fail "--kv-cache-dtype int8 message"
# bfloat16 (vLLM accepts it) is the cache of a bfloat16 model; with --dtype half it is refused.
rm -f "$tmp/out.jsonl"
run --dtype half --kv-cache-dtype bfloat16; [ $? -ne 0 ] || fail "--kv-cache-dtype bfloat16 with --dtype half was accepted"
grep -q -e "--kv-cache-dtype bfloat16: the model runs in float16" "$tmp/log" || fail "--kv-cache-dtype bfloat16 message"
rm -f "$tmp/out.jsonl"
run --kv-cache-dtype bfloat16 || fail "--kv-cache-dtype bfloat16 on a bfloat16 model exited non-zero"
for i in 0 1 2; do
  want=$(jq -c --argjson i "$i" '.cases[$i].greedy_ids' "$exp")
  [ "$(get "ids-$i" '.choices[0].token_ids')" = "$want" ] || fail "--kv-cache-dtype bfloat16, ids-$i: tokens differ from transformers"
done

# The model's generation_config.json gives a request's absent sampling fields their defaults, as
# vLLM's --generation-config auto does: temperature 0 and max_new_tokens 3 make a request that
# names neither greedy and 3 tokens long (top_k 50 is transformers' default: not taken);
# --generation-config vllm ignores the file (OpenAI's defaults: 16 tokens); a malformed
# --override-generation-config is refused with a message.
gen_model=$tmp/gen-model
cp -r "$model" "$gen_model"
echo '{"do_sample": false, "temperature": 0.0, "max_new_tokens": 3, "top_k": 50}' >"$gen_model/generation_config.json"
jq -c '{custom_id: "gen", url: "/v1/completions", body: {prompt: .cases[0].prompt_ids, ignore_eos: true,
       return_token_ids: true}}' "$exp" >"$tmp/in.jsonl"
run_gen() { rm -f "$tmp/out.jsonl"; timeout 300 "$mpirun" --oversubscribe -np 2 "$lockstep" batch --model "$gen_model" -tp 2 \
              --kv-cache-memory 2M --input "$tmp/in.jsonl" --output "$tmp/out.jsonl" "$@" >"$tmp/log" 2>&1; }
run_gen || fail "generation config: batch exited non-zero"
grep -q "default sampling parameters from the generation config: temperature 0, max_tokens 3" "$tmp/log" ||
  fail "generation config: the defaults are not logged"
[ "$(get gen '.choices[0].token_ids')" = "$(jq -c '.cases[0].greedy_ids[:3]' "$exp")" ] ||
  fail "generation config: not greedy and 3 tokens: $(get gen '.choices[0].token_ids')"
run_gen --generation-config vllm || fail "--generation-config vllm: batch exited non-zero"
[ "$(get gen '.usage.completion_tokens')" = 16 ] || fail "--generation-config vllm: the file was not ignored"
run_gen --override-generation-config '{"max_new_tokens": 5}' || fail "override: batch exited non-zero"
[ "$(get gen '.choices[0].token_ids')" = "$(jq -c '.cases[0].greedy_ids[:5]' "$exp")" ] || fail "override: not 5 greedy tokens"
run_gen --override-generation-config '{"temperature": ' && fail "a malformed override was accepted"
[ "$(grep -c -e "--override-generation-config: not valid JSON" "$tmp/log")" = 1 ] ||
  fail "malformed override: not one message (every rank has the same error; rank 0 says it)"
grep -q "loading weights" "$tmp/log" && fail "malformed override: weights were loaded before the refusal"

# A checkpoint that lacks a layer its config names: only the last stage's ranks fail to load. Every
# rank must end (run's timeout would catch a hang: a rank failing alone used to leave the others
# in a mismatched collective on GPUs), rank 0 saying another rank failed, the failing ones which
# tensor is missing.
short_model=$tmp/short-model
cp -r "$model" "$short_model"
jq '.num_hidden_layers += 1' "$model/config.json" >"$short_model/config.json"
timeout 300 "$mpirun" --oversubscribe -np 4 "$lockstep" batch --model "$short_model" -tp 2 -pp 2 --kv-cache-memory 2M \
  --input "$tmp/in.jsonl" --output "$tmp/short.jsonl" >"$tmp/log" 2>&1
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "a layer missing on the last stage must end every rank with an error (rc $rc)"
grep -q "lockstep batch: error: another rank failed to load its part of the model" "$tmp/log" ||
  fail "rank 0 must say another rank failed to load"
grep -qE "lockstep batch: error on rank [23]: .*tensor model\.layers\.4\..* is missing from the checkpoint" "$tmp/log" ||
  fail "the failing ranks must name the missing tensor"
# A generation config that one rank alone cannot read (Open MPI's rank variable picks each rank's
# directory): every rank stops with a message, none waits in a collective.
mkdir -p "$tmp/g0"
echo '{"temperature": 0.5}' >"$tmp/g0/generation_config.json"
timeout 120 "$mpirun" --oversubscribe -np 2 sh -c "exec '$lockstep' batch --model '$gen_model' -tp 2 --kv-cache-memory 2M \
  --input '$tmp/in.jsonl' --output '$tmp/split.jsonl' --generation-config '$tmp'/g\$OMPI_COMM_WORLD_RANK" >"$tmp/log" 2>&1
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "a generation config one rank cannot read: exit status $rc (124: a hang)"
grep -q "error on rank 1: --generation-config .*/g1: cannot open" "$tmp/log" || fail "one rank's generation config: its message"
# A model directory that one rank alone lacks (not on a shared file system): every rank stops, rank
# 0 saying another rank failed, rank 1 what it could not open. It used to hang: rank 1's check
# paired with rank 0's KV-block agreement, and the next collectives did not match.
mkdir -p "$tmp/m0" && cp -r "$model"/. "$tmp/m0/"
timeout 120 "$mpirun" --oversubscribe -np 2 sh -c "exec '$lockstep' batch --model '$tmp'/m\$OMPI_COMM_WORLD_RANK -tp 2 \
  --kv-cache-memory 2M --input '$tmp/in.jsonl' --output '$tmp/split.jsonl'" >"$tmp/log" 2>&1
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "a model directory one rank lacks: exit status $rc (124: a hang)"
grep -q "lockstep batch: error: another rank failed to read the model's config and checkpoint" "$tmp/log" ||
  fail "a model directory one rank lacks: rank 0's message"
grep -q "error on rank 1: .*/m1/config.json: cannot open" "$tmp/log" || fail "a model directory one rank lacks: rank 1's message"

# A rank bound to one core of several (mpirun's default at -np 1 or 2) gets a warning that says
# how to give it more; an unbound rank gets none.
if [ "$(nproc)" -gt 1 ]; then
  echo '{"custom_id": "a", "url": "/v1/completions", "body": {"prompt": [1, 2, 3], "max_tokens": 2}}' >"$tmp/one.jsonl"
  for bind in core none; do
    rm -f "$tmp/bound.jsonl"
    timeout 120 "$mpirun" -np 1 --bind-to "$bind" "$lockstep" batch --model "$model" --kv-cache-memory 2M \
      --input "$tmp/one.jsonl" --output "$tmp/bound.jsonl" >"$tmp/log" 2>&1 || fail "--bind-to $bind: batch failed"
    if grep -q "warn: this rank may run on 1 of the host's [0-9]* CPUs.*mpirun --bind-to none" "$tmp/log"; then
      [ "$bind" = core ] || fail "--bind-to none: warned about one CPU"
    else
      [ "$bind" = none ] || fail "--bind-to core: no warning about running on one CPU"
    fi
  done
fi

# --device cuda where no rank has a GPU (CI): one clear error, every rank exits, no hang.
if ! nvidia-smi -L >/dev/null 2>&1; then
  rm -f "$tmp/out.jsonl"
  run --device cuda; [ $? -ne 0 ] || fail "--device cuda without GPUs succeeded"
  grep -q -e "--device cuda: some rank sees no GPU" -e "--device cuda: this lockstep was built without CUDA" "$tmp/log" ||
    fail "--device cuda without GPUs: message"
  [ ! -s "$tmp/out.jsonl" ] || fail "--device cuda without GPUs wrote results"
fi
echo PASS
