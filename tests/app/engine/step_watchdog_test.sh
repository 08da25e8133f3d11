#!/usr/bin/env bash
# A rank stuck in a collective whose peers never come: its step watchdog (LOCKSTEP_STEP_TIMEOUT=1)
# must end every rank with a non-zero status within 20 s, the message naming the rank, the step
# and the timeout.   usage: step_watchdog_test.sh MPIRUN NP PROBE
set -u
mpirun=$1 np=$2 probe=$3
out=$(mktemp); trap 'rm -f "$out"' EXIT
start=$(date +%s%N)
LOCKSTEP_STEP_TIMEOUT=1 timeout 120 "$mpirun" --oversubscribe -np "$np" "$probe" >"$out" 2>&1
rc=$?
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
cat "$out"
fail() { echo "FAIL: $*"; exit 1; }
[ "$rc" -ne 124 ] || fail "job still running after 120 s: the watchdog did not end it"
[ "$rc" -ne 0 ] || fail "job exited 0"
[ "$elapsed_ms" -lt 20000 ] || fail "job took ${elapsed_ms} ms to end (limit 20 s)"
last=$((np - 1))
grep -Eq "lockstep: fatal \[r$last host=[^]]+\] app/engine/step_watchdog.cc:[0-9]+: engine step 42 has not finished after 1(\.[0-9]+)? s \(LOCKSTEP_STEP_TIMEOUT=1\): a rank is stuck" "$out" \
  || fail "watchdog message lacks rank/step/timeout"
echo "PASS: rc=$rc after ${elapsed_ms} ms"
