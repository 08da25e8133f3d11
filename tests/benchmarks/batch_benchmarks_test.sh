#!/usr/bin/env bash
# benchmarks/decode_bench.sh and benchmarks/offline_throughput.sh on the qwen2 fixture (decode:
# its vocabulary with wider layers; dummy weights, CPU): the tables carry a row per run with
# figures that follow from the times,
# and a run whose requests fail (prompt over the model length) fails the script with the reason.
# usage: batch_benchmarks_test.sh MPIRUN LOCKSTEP FIXTURES_DIR
set -u
mpirun=$1 lockstep=$2 fixtures=$3
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export PATH="$(dirname "$mpirun"):$PATH"
model=$fixtures/qwen2-tiny
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; cat "$tmp"/*.table 2>/dev/null; exit 1; }

# The decode table on the fixture's vocabulary and tokenizer but wider and deeper layers (hidden
# 256, 8 layers): at the fixture's own size 200 decode steps took 16-80 ms, as long as the noise
# of a loaded 2-core machine, and the 200-token run sometimes timed shorter than the 1-token one.
python3 - "$model/config.json" "$tmp/decode_config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c.update(hidden_size=256, intermediate_size=1024, num_hidden_layers=8, max_window_layers=8)
json.dump(c, open(sys.argv[2], "w"))
PY
"$repo/benchmarks/decode_bench.sh" "$lockstep" "$tmp/decode_config.json" "$model" "$tmp/decode" 2 "1 4" 16 200 -- -tp 2 \
  >"$tmp/decode.table" 2>&1 || fail "decode_bench.sh exited non-zero"
cat "$tmp/decode.table"
python3 - "$tmp/decode.table" <<'PY' || fail "decode table"
import sys
rows = [l.split() for l in open(sys.argv[1]).read().splitlines()[1:]]
assert [r[0] for r in rows] == ["1", "4"], rows
for b, prompt, new, t1, tn, agg, per in rows:
    b, new, t1, tn, agg, per = int(b), int(new), float(t1), float(tn), float(agg), float(per)
    # t1: one prefill step of the tiny model, under half a millisecond on a fast host (0.000 s).
    assert prompt == "16" and new == 200 and 0 <= t1 < tn, (t1, tn)
    # The times are printed to 1 ms (each off by up to 0.5 ms), so tn - t1 is known to 1 ms:
    # agg from them is off by up to agg * 1e-3 / (tn - t1 - 1e-3), plus its own print rounding.
    slack = 1e-3 / max(tn - t1 - 1e-3, 1e-3)
    assert abs(agg - b * (new - 1) / (tn - t1)) <= 0.1 + slack * agg, (agg, t1, tn)
    assert abs(per - agg / b) <= 0.1 + 1e-3 * per, (per, agg)
PY

"$repo/benchmarks/offline_throughput.sh" "$lockstep" "$model/config.json" "$model" "$tmp/offline" 1 6 32 16 \
  >"$tmp/offline.table" 2>&1 || fail "offline_throughput.sh exited non-zero"
cat "$tmp/offline.table"
python3 - "$tmp/offline.table" <<'PY' || fail "offline table"
import sys
lines = open(sys.argv[1]).read().splitlines()
assert lines[0].split() == ["prompts", "input_len", "output_len", "time_s", "requests/s", "total_tok/s", "output_tok/s"]
n, i, o, t, rps, total, out = lines[1].split()
n, i, o, t, rps, total, out = int(n), int(i), int(o), float(t), float(rps), float(total), float(out)
assert (n, i, o) == (6, 32, 16) and t > 0
assert abs(out - n * o / t) <= 0.1 + 1e-2 * out and abs(total - n * (i + o) / t) <= 0.1 + 1e-2 * total
PY

# The fixture's model length is 256: 300-token prompts are refused, and the script says so.
"$repo/benchmarks/offline_throughput.sh" "$lockstep" "$model/config.json" "$model" "$tmp/too_long" 1 2 300 4 \
  >"$tmp/too_long.table" 2>&1 && fail "requests over the model length did not fail the script"
grep -q "2 of 2 requests, 2 without 4 tokens" "$tmp/too_long.table" || fail "no reason given: $(cat "$tmp/too_long.table")"
echo PASS
