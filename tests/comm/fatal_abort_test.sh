#!/usr/bin/env bash
# A fatal error on one rank must end every rank with a non-zero status within 10 s, and the
# message must name the rank, the host and file:line.   usage: fatal_abort_test.sh MPIRUN NP PROBE [MODE]
# MODE uncaught: the error is an exception nobody catches, on a thread of the rank's; stuck: the
# rank waits in a collective its peers never reach, and its step watchdog (LOCKSTEP_STEP_TIMEOUT=1)
# ends the job.
set -u
mpirun=$1 np=$2 probe=$3 mode=${4:-}
out=$(mktemp); trap 'rm -f "$out"' EXIT
start=$(date +%s%N)
LOCKSTEP_STEP_TIMEOUT=1 timeout 60 "$mpirun" --oversubscribe -np "$np" "$probe" $mode >"$out" 2>&1
rc=$?
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
cat "$out"
fail() { echo "FAIL: $*"; exit 1; }
[ "$rc" -ne 124 ] || fail "job still running after 60 s: the fatal error hung the other ranks"
[ "$rc" -ne 0 ] || fail "job exited 0 after a fatal error"
[ "$elapsed_ms" -lt 10000 ] || fail "job took ${elapsed_ms} ms to end (limit 10 s)"
last=$((np - 1))
case $mode in
  uncaught) where="comm/mpi_env.cc:[0-9]+: uncaught exception: injected uncaught exception on rank $last \(test\)" ;;
  stuck) where="app/engine/step_watchdog.cc:[0-9]+: engine step 42 has not finished after 1(\.[0-9]+)? s \(LOCKSTEP_STEP_TIMEOUT=1\): a rank is stuck" ;;
  *) where="tests/comm/fatal_probe.cc:[0-9]+: injected failure on rank $last" ;;
esac
grep -Eq "lockstep: fatal \[r$last host=[^]]+\] $where" "$out" || fail "fatal message lacks rank/host/file:line/reason"
echo "PASS: rc=$rc after ${elapsed_ms} ms"
