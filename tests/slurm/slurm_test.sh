#!/usr/bin/env bash
# The slurm/ scripts under a real single-node Slurm (Debian's slurm-wlm and munge, started here
# by local_slurm.sh) in CPU mode: commbench.sbatch (gridcheck under srun --mpi=pmix, then the
# commbench table with #wrong 0 and the --diagnose report) and batch.sbatch (TP2 x PP2 on the
# tiny llama fixture; greedy ids equal transformers'), each run to completion through sbatch.
# serve.sbatch then serves the qwen2 fixture: one completion equal to transformers, then a
# graceful scancel --signal=TERM that every rank survives with exit 0.
# A 2-CPU node cannot hold 2 x 8 tasks, so the test overrides the scripts' #SBATCH shape on the
# command line and asks srun for 4 overcommitted tasks.
# usage: slurm_test.sh LOCKSTEP_HOME LOCKSTEP_BIN FIXTURES_DIR
set -u
home=$1 bin=$2 fixtures=$3
for tool in slurmctld slurmd munged sbatch; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool missing (bash scripts/setup.sh installs slurm-wlm and munge)"; exit 1; }
done
tmp=$(mktemp -d /tmp/lockstep-slurm.XXXXXX) && chmod 755 "$tmp"  # munged wants a reachable socket path
fail() { echo "FAIL: $*"; for f in "$tmp"/*.out "$tmp"/slurm/log/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }; done; exit 1; }
# shellcheck source=local_slurm.sh
. "$home/tests/slurm/local_slurm.sh" "$tmp/slurm" || fail "local Slurm did not start"
trap 'slurm_stop; rm -rf "$tmp"' EXIT

shape=(--nodes=1 --ntasks-per-node=1 --cpus-per-task=1 --overcommit --time=00:10:00)
export LOCKSTEP_HOME=$home LOCKSTEP_BIN=$bin LOCKSTEP_CPU=1 SRUN_ARGS="--overcommit --ntasks=4"

# commbench.sbatch: rank/grid detection, the table, the diagnosis.
COMMBENCH_ARGS="-b 1K -e 64K -f 4 --ops all_reduce,all_gather,sendrecv" \
  timeout 300 sbatch --wait --export=ALL "${shape[@]}" --output="$tmp/commbench.out" \
  "$home/slurm/commbench.sbatch" >/dev/null || fail "commbench.sbatch did not finish with exit 0"
out=$tmp/commbench.out
grep -q "^# lockstep gridcheck: 4 ranks = TP4 x PP1, backend mpi" "$out" || fail "gridcheck did not see 4 ranks under Slurm"
grep -q "^# grid self-check OK" "$out" || fail "grid self-check"
[ "$(grep -c '^# Out of bounds values : 0 OK' "$out")" = 3 ] || fail "commbench: expected 3 ops with 0 wrong values"
grep -q "^# Avg bus bandwidth" "$out" || fail "commbench: no average bus bandwidth line"
grep -q "^# MPI: Open MPI" "$out" || fail "--diagnose report missing"
echo "ok: commbench.sbatch"

# batch.sbatch: TP2 x PP2 offline inference; greedy ids equal transformers'.
exp=$fixtures/llama-tiny.expected.json
jq -c '{custom_id: "c0", url: "/v1/completions",
        body: {prompt: .cases[0].prompt_ids, max_tokens: 8, temperature: 0, ignore_eos: true, return_token_ids: true}}' \
  "$exp" >"$tmp/in.jsonl"
MODEL=$fixtures/llama-tiny INPUT=$tmp/in.jsonl OUTPUT=$tmp/results.jsonl TP=2 PP=2 BATCH_ARGS="--kv-cache-memory 2M" \
  timeout 300 sbatch --wait --export=ALL "${shape[@]}" --output="$tmp/batch.out" \
  "$home/slurm/batch.sbatch" >/dev/null || fail "batch.sbatch did not finish with exit 0"
got=$(jq -c 'select(.custom_id == "c0") | .response.body.choices[0].token_ids' "$tmp/results.jsonl")
[ "$got" = "$(jq -c '.cases[0].greedy_ids' "$exp")" ] || fail "batch.sbatch: tokens $got differ from transformers"
grep -q "TP2 x PP2" "$tmp/batch.out" || fail "batch.sbatch: expected TP2 x PP2 from 4 tasks"
echo "ok: batch.sbatch"
# serve.sbatch: TP2 x PP2 server; a completion equals transformers; scancel --signal=TERM drains
# it and the job completes with exit 0.
job=$(MODEL=$fixtures/qwen2-tiny TP=2 PP=2 PORT=0 HOST=127.0.0.1 SERVE_ARGS="--kv-cache-memory 8M" \
  sbatch --parsable --export=ALL "${shape[@]}" --output="$tmp/serve.out" "$home/slurm/serve.sbatch") ||
  fail "serve.sbatch was not accepted"
url=
for _ in $(seq 1 300); do
  url=$(grep -o 'OpenAI API at http://[^ ]*/v1' "$tmp/serve.out" 2>/dev/null | head -n 1 | sed 's/OpenAI API at //')
  [ -n "$url" ] && curl -sf "${url%/v1}/health" >/dev/null && break
  sleep 0.2
done
[ -n "$url" ] || fail "serve.sbatch: the server did not come up"
exp=$fixtures/qwen2-tiny.expected.json
got=$(curl -sf "$url/completions" -H 'Content-Type: application/json' -d "$(jq -c '{prompt: .cases[0].prompt_ids,
  max_tokens: 8, temperature: 0, ignore_eos: true, return_token_ids: true}' "$exp")" | jq -c '.choices[0].token_ids')
[ "$got" = "$(jq -c '.cases[0].greedy_ids' "$exp")" ] || fail "serve.sbatch: tokens $got differ from transformers"
scancel --signal=TERM "$job"
for _ in $(seq 1 150); do
  squeue -h -j "$job" 2>/dev/null | grep -q . || break
  sleep 0.2
done
state=$(scontrol -o show job "$job" 2>/dev/null | grep -o 'JobState=[A-Z]* .*ExitCode=[0-9:]*')
case "$state" in
  JobState=COMPLETED*ExitCode=0:0) ;;
  *) fail "serve.sbatch after scancel --signal=TERM: $state (want COMPLETED, exit 0)" ;;
esac
grep -q "lockstep serve: stopped" "$tmp/serve.out" || fail "serve.sbatch: no clean stop in the log"
echo "ok: serve.sbatch"
echo "PASS"
