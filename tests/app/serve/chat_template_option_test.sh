#!/usr/bin/env bash
# `lockstep serve --chat-template` end to end (vLLM's flag): a template file replaces the
# tokenizer's for /tokenize and chat completions, with the tokenizer's special tokens; the
# template given on the command line, its \n escapes decoded, the same; a path that does not open
# and a template that does not parse each end the job at start-up with a message naming the flag.
# usage: chat_template_option_test.sh MPIRUN LOCKSTEP FIXTURES_DIR
set -u
mpirun=$1 lockstep=$2 fixtures=$3
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../../scripts/serve_helpers.sh"
server_test_scaffold
model=$fixtures/llama-tiny
json=(-H "Content-Type: application/json")

# serve_with TEMPLATE: starts the server with --chat-template TEMPLATE; sets $url.
serve_with() {
  "$mpirun" --oversubscribe -np 1 "$lockstep" serve --model "$model" --served-model-name tiny --kv-cache-memory 8M \
    --port 0 --host 127.0.0.1 --chat-template "$1" >"$tmp/server.log" 2>&1 &
  server_pid=$!
  url=$(wait_for_server "$tmp/server.log" "$server_pid") || fail "the server did not come up with --chat-template $1"
}
# expect_rendering TEXT: the chat prompt of one user message must be TEXT, token for token.
expect_rendering() {
  local base=${url%/v1} got want prompt_tokens
  got=$(curl -sf "${json[@]}" "$base/tokenize" -d '{"messages": [{"role": "user", "content": "Hello there"}]}' |
    jq -c .tokens) || fail "/tokenize of messages"
  want=$(curl -sf "${json[@]}" "$base/tokenize" -d "$(jq -nc --arg p "$1" '{prompt: $p, add_special_tokens: false}')" |
    jq -c .tokens) || fail "/tokenize of the expected text"
  [ "$got" = "$want" ] || fail "the chat prompt is not the --chat-template rendering: $got, want $want"
  prompt_tokens=$(curl -sf "${json[@]}" "$url/chat/completions" \
    -d '{"model": "tiny", "messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 1}' |
    jq .usage.prompt_tokens) || fail "chat completion"
  [ "$prompt_tokens" = "$(jq length <<<"$want")" ] || fail "chat completion's prompt_tokens $prompt_tokens"
  kill "$server_pid"; wait "$server_pid" 2>/dev/null; server_pid=
}
want='<|begin_of_text|>[user] Hello there
[assistant] '

printf '%s' '{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}
{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}' >"$tmp/t.jinja"
serve_with "$tmp/t.jinja"
expect_rendering "$want"

serve_with '{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}'
expect_rendering "$want"

# fails_with TEMPLATE MESSAGE: the job must end (not serve) and say MESSAGE.
fails_with() {
  timeout 60 "$mpirun" --oversubscribe -np 1 "$lockstep" serve --model "$model" --kv-cache-memory 8M --port 0 \
    --host 127.0.0.1 --chat-template "$1" >"$tmp/server.log" 2>&1
  local rc=$?
  [ $rc != 0 ] && [ $rc != 124 ] || fail "--chat-template $1: exit $rc, want a start-up error"
  grep -qF -- "$2" "$tmp/server.log" || fail "--chat-template $1: the message does not say '$2'"
}
fails_with "$tmp/missing.jinja" "looks like a file path, but it cannot be opened"
fails_with '{% if %}oops' "--chat-template:"
echo PASS
