#!/usr/bin/env bash
# benchmarks/serve_load.mjs against `lockstep serve` on the qwen2 fixture (TP2, CPU): every
# level completes all its requests with exactly max_tokens each, and the table and the JSON
# carry the deployment-report columns with sane values.
# usage: serve_load_test.sh MPIRUN LOCKSTEP FIXTURES_DIR
set -u
mpirun=$1 lockstep=$2 fixtures=$3
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/scripts/serve_helpers.sh"
tmp=$(mktemp -d)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; cat "$tmp/table" 2>/dev/null; tail -n 20 "$tmp/server.log"; exit 1; }

"$mpirun" --oversubscribe -np 2 "$lockstep" serve --model "$fixtures/qwen2-tiny" --served-model-name tiny -tp 2 \
  --kv-cache-memory 8M --port 0 --host 127.0.0.1 >"$tmp/server.log" 2>&1 &
server_pid=$!
url=$(wait_for_server "$tmp/server.log" "$server_pid") || fail "the server did not come up"
node "$repo/benchmarks/serve_load.mjs" --url "$url" --model tiny --concurrency 1,4 --prompt-len 16 --max-tokens 64 \
  --requests 6 --vocab 200 --json "$tmp/load.json" >"$tmp/table" 2>&1 || fail "serve_load.mjs exited non-zero"
head -1 "$tmp/table" | grep -q "concurrency.*ttft_mean_s.*tok_s_per_request.*total_time_s.*total_tokens.*output_tok_s" ||
  fail "table header"
[ "$(jq '.rows | length' "$tmp/load.json")" = 2 ] || fail "one row per concurrency level"
# tok/s per request needs a stream that came in more than one read: a fast server may deliver a
# whole stream at once (null then), but over 12 streams of 64 tokens some are spread out.
jq -e '(.rows | all(.requests == 6 and .total_tokens == 384 and .ttft_p50_s > 0 and .ttft_p99_s >= .ttft_p50_s
       and (.tok_s_per_request == null or .tok_s_per_request > 0) and .output_tok_s > 0 and .total_time_s > 0))
       and (.rows | any(.tok_s_per_request != null))' "$tmp/load.json" >/dev/null ||
  fail "row values: $(cat "$tmp/load.json")"
[ "$(jq '.rows[1].concurrency' "$tmp/load.json")" = 4 ] || fail "levels"
cat "$tmp/table"
rank0=$(rank0_pid "lockstep serve --model $fixtures/qwen2-tiny") && kill -TERM "$rank0"
wait "$server_pid" || fail "the server did not stop cleanly on SIGTERM"
server_pid=
echo PASS
