#!/usr/bin/env bash
# `lockstep gridcheck` end to end under mpirun: the placement table and self-check for a
# TP2 x PP2 grid, and the one-line error plus non-zero exit of every rank when the world size
# does not match TP x PP.   usage: gridcheck_test.sh MPIRUN LOCKSTEP
set -u
mpirun=$1 lockstep=$2
out=$(mktemp); trap 'rm -f "$out"' EXIT
fail() { echo "FAIL: $*"; cat "$out"; exit 1; }

timeout 120 "$mpirun" --oversubscribe -np 4 "$lockstep" gridcheck -tp 2 -pp 2 --backend mpi >"$out" 2>&1 \
  || fail "gridcheck TP2xPP2 exited non-zero"
grep -q "4 ranks = TP2 x PP2, backend mpi" "$out" || fail "missing header"
for r in 0 1 2 3; do
  tp=$((r % 2)); pp=$((r / 2))
  grep -Eq "^ +$r +$tp +$pp " "$out" || fail "rank $r not shown at tp $tp pp $pp"
done
grep -q "grid self-check OK: world, 2 TP group(s) of 2, 2 PP group(s) of 2, 2 pipeline link(s)" "$out" \
  || fail "self-check did not pass"

timeout 60 "$mpirun" --oversubscribe -np 3 "$lockstep" gridcheck --tensor-parallel-size 2 \
  --pipeline-parallel-size 2 >"$out" 2>&1
rc=$?
[ "$rc" -ne 124 ] || fail "world-size mismatch hung"
[ "$rc" -ne 0 ] || fail "world-size mismatch exited 0"
n=$(grep -c "lockstep: error: world size 3 != tensor-parallel-size 2 x pipeline-parallel-size 2" "$out")
[ "$n" -eq 1 ] || fail "expected the mismatch message exactly once, saw $n"

timeout 60 "$mpirun" --oversubscribe -np 2 "$lockstep" gridcheck --tensor-parallel-size 0 >"$out" 2>&1
[ $? -ne 0 ] || fail "TP 0 accepted"
echo PASS
