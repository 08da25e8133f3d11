#!/usr/bin/env bash
# `lockstep serve` end to end on TP2 x PP2 (mpirun -np 4; see SERVE_TEST_* below) with a tiny transformers fixture:
# the official OpenAI Node client (openai_client_test.mjs) checks completions, chat (streamed
# with usage, reasoning split), stop strings, n > 1, errors, 64 concurrent streams and client
# disconnects against the fixtures; curl checks /tokenize, /detokenize, /health, /metrics,
# /version, 401/404/413; then SIGTERM to rank 0 must drain and end every rank with exit 0.
# usage: serve_test.sh MPIRUN LOCKSTEP FIXTURES_DIR FIXTURE_NAME
set -u
mpirun=$1 lockstep=$2 fixtures=$3 name=$4
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../../scripts/serve_helpers.sh"
server_test_scaffold
[ -d "$here/node_modules/openai" ] || fail "the openai npm client is missing: npm ci --prefix tests/app/serve (scripts/setup.sh does it)"

key=test-key-$RANDOM
# SERVE_TEST_NP and SERVE_TEST_LAYOUT (default 4 ranks, -tp 2 -pp 2) and SERVE_TEST_FLAGS (e.g.
# --device cuda) for GPU hosts; there LOCKSTEP_SERVE_TEST_MIN_MARGIN (see openai_client_test.mjs)
# lets bf16 runs part from the fp32 fixtures where transformers' own top-2 margin is small.
# The step watchdog on (SERVE_TEST_STEP_TIMEOUT, default 5 s): no step of these tiny models comes
# near it, and the server idles longer than it below, which must not end the job.
step_timeout=${SERVE_TEST_STEP_TIMEOUT:-5}
# shellcheck disable=SC2086
LOCKSTEP_STEP_TIMEOUT=$step_timeout "$mpirun" --oversubscribe -np "${SERVE_TEST_NP:-4}" "$lockstep" serve --model "$fixtures/$name" --served-model-name "$name" \
  ${SERVE_TEST_LAYOUT:--tp 2 -pp 2} ${SERVE_TEST_FLAGS:-} \
  --kv-cache-memory 8M --max-num-batched-tokens 64 --port 0 --host 127.0.0.1 --api-key "$key" \
  >"$tmp/server.log" 2>&1 &
server_pid=$!
url=$(wait_for_server "$tmp/server.log" "$server_pid") || fail "the server did not come up"
base=${url%/v1}
echo "server at $url"
grep -q "a step that takes longer than $step_timeout s ends the job (LOCKSTEP_STEP_TIMEOUT)" "$tmp/server.log" ||
  fail "the step watchdog is not on"
# Idle past the step timeout, then at a step boundary: the watchdog watches steps only.
curl -sf -H "Authorization: Bearer $key" -H "Content-Type: application/json" "$base/v1/completions" \
  -d "{\"model\": \"$name\", \"prompt\": [1, 2, 3], \"max_tokens\": 2}" >/dev/null || fail "first completion"
sleep "$((step_timeout + 1))"
kill -0 "$server_pid" 2>/dev/null || fail "the server ended while idle (the step watchdog fired between steps?)"

node "$here/openai_client_test.mjs" "$url" "$key" "$name" "$fixtures" "$name" || fail "OpenAI client checks"

auth=(-H "Authorization: Bearer $key" -H "Content-Type: application/json")
chat0=$(jq -c '.chat[0]' "$fixtures/$name.serving.json")
got=$(curl -sf "${auth[@]}" "$base/tokenize" -d "$(jq -c '{messages: .messages}' <<<"$chat0")" | jq -c .tokens)
[ "$got" = "$(jq -c .prompt_ids <<<"$chat0")" ] || fail "/tokenize of messages differs from apply_chat_template"
case0=$(jq -c '.cases[0]' "$fixtures/$name.expected.json")
got=$(curl -sf "${auth[@]}" "$base/tokenize" -d "$(jq -c '{prompt: .prompt}' <<<"$case0")")
[ "$(jq -c .tokens <<<"$got")" = "$(jq -c .prompt_ids <<<"$case0")" ] || fail "/tokenize of a prompt"
[ "$(jq .count <<<"$got")" = "$(jq '.prompt_ids | length' <<<"$case0")" ] || fail "/tokenize count"
got=$(curl -sf "${auth[@]}" "$base/detokenize" -d "$(jq -c '{tokens: .greedy_ids}' <<<"$case0")" | jq -c .prompt)
[ "$got" = "$(jq -c .greedy_text <<<"$case0")" ] || fail "/detokenize"
code=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "$base/detokenize" -d '{"tokens": [1, 99999]}')
[ "$code" = 400 ] || fail "/detokenize of an id outside the vocabulary: $code"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$base/v1/models")
[ "$code" = 401 ] && [ "$(jq -r .error.type "$tmp/body")" = authentication_error ] || fail "no API key: $code"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' "${auth[@]}" "$base/v1/nothing")
[ "$code" = 404 ] && jq -e .error.message "$tmp/body" >/dev/null || fail "unknown route: $code"
head -c $((33 << 20)) /dev/zero | tr '\0' 'a' >"$tmp/big"
code=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "$base/v1/completions" --data-binary @"$tmp/big")
[ "$code" = 413 ] || fail "33 MB body: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "$base/v1/completions" -d '{"prompt": "x", "max_tokens": ')
[ "$code" = 400 ] || fail "malformed JSON: $code"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/health")" = 200 ] || fail "/health"
curl -sf "$base/version" | jq -e .version >/dev/null || fail "/version"
curl -sf "$base/metrics" >"$tmp/metrics" || fail "/metrics"
for m in num_requests_running num_requests_waiting kv_cache_usage_perc prefix_cache_hit_rate \
         time_to_first_token_seconds_bucket inter_token_latency_seconds_bucket e2e_request_latency_seconds_bucket \
         request_prompt_tokens_bucket request_generation_tokens_bucket prompt_tokens_total generation_tokens_total; do
  grep -q "^lockstep:$m" "$tmp/metrics" || fail "/metrics lacks lockstep:$m"
done
awk '/^lockstep:generation_tokens_total/ {exit !($NF >= 512)}' "$tmp/metrics" || fail "generation token counter"
# Time to first token counts from arrival (prefill included): never all zero, and within e2e.
ttft_sum=$(awk '/^lockstep:time_to_first_token_seconds_sum/ {print $NF}' "$tmp/metrics")
e2e_sum=$(awk '/^lockstep:e2e_request_latency_seconds_sum/ {print $NF}' "$tmp/metrics")
awk -v t="$ttft_sum" -v e="$e2e_sum" 'BEGIN {exit !(t > 0 && t <= e)}' || fail "/metrics: TTFT sum $ttft_sum (e2e $e2e_sum)"
# Finished requests' lengths: as many as finished, their generated tokens within the counter's.
# request_success_total by finished_reason, as vLLM labels it: these requests stopped at max_tokens.
grep -qE '^lockstep:request_success_total\{model_name="[^"]*",finished_reason="length"\} [1-9]' "$tmp/metrics" ||
  fail "/metrics: request_success_total{finished_reason=\"length\"}"
grep -q '^vllm:request_success_total{.*finished_reason="stop"}' "$tmp/metrics" || fail "/metrics: finished_reason=stop"
finished=$(awk '/^lockstep:request_success_total/ {s += $NF} END {print s}' "$tmp/metrics")
awk -v f="$finished" '/^lockstep:request_prompt_tokens_count/ {exit !($NF == f && f > 0)}' "$tmp/metrics" ||
  fail "/metrics: request_prompt_tokens_count should equal request_success_total ($finished)"
gen_total=$(awk '/^lockstep:generation_tokens_total/ {print $NF}' "$tmp/metrics")
awk -v g="$gen_total" '/^lockstep:request_generation_tokens_sum/ {exit !($NF > 0 && $NF <= g)}' "$tmp/metrics" ||
  fail "/metrics: request_generation_tokens_sum"
# vLLM's names too (dashboards made for vLLM), with the same values.
for m in num_requests_running kv_cache_usage_perc time_to_first_token_seconds_count e2e_request_latency_seconds_sum \
         prompt_tokens_total generation_tokens_total request_success_total request_prompt_tokens_count \
         request_generation_tokens_sum; do
  a=$(grep "^lockstep:$m{" "$tmp/metrics" | awk '{print $NF}') b=$(grep "^vllm:$m{" "$tmp/metrics" | awk '{print $NF}')
  [ -n "$a" ] && [ "$a" = "$b" ] || fail "/metrics: vllm:$m ($b) should equal lockstep:$m ($a)"
done
grep -q '^vllm:generation_tokens_total{model_name="' "$tmp/metrics" || fail "/metrics: vllm: metrics carry model_name"

# SIGTERM to rank 0 while a request streams: it finishes, then every rank exits 0.
curl -sN "${auth[@]}" "$url/completions" -d "$(jq -c '{prompt: .prompt_ids, max_tokens: 48, temperature: 0,
  ignore_eos: true, stream: true}' <<<"$case0")" >"$tmp/last.sse" &
client=$!
sleep 0.3
rank0=$(rank0_pid "lockstep serve --model $fixtures/$name") || fail "rank 0 not found"
kill -TERM "$rank0"
rc=0
timeout 60 tail --pid="$server_pid" -f /dev/null || fail "the job did not end within 60 s of SIGTERM"
wait "$server_pid" || rc=$?
server_pid=
wait "$client"
[ "$rc" = 0 ] || fail "mpirun exit status $rc after SIGTERM (every rank must exit 0)"
grep -q '"finish_reason":"length"' "$tmp/last.sse" && grep -q '^data: \[DONE\]' "$tmp/last.sse" ||
  fail "the in-flight stream did not finish during the drain"
grep -q "received SIGTERM" "$tmp/server.log" || fail "no shutdown message"
echo "PASS"
