#!/usr/bin/env bash
# `lockstep commbench` end to end on the MPI backend: nccl-tests' table for every collective,
# dtype and reduction with #wrong 0 and exit 0; --json agrees with the table; a run with an
# injected corruption reports wrong values and exits non-zero; latency mode prints p50/p99.
# usage: commbench_test.sh MPIRUN LOCKSTEP NP
set -u
mpirun=$1 lockstep=$2 np=$3
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
out=$dir/out
fail() { echo "FAIL: $*"; cat "$out"; exit 1; }
run() { timeout 300 "$mpirun" --oversubscribe -np "$np" "$lockstep" commbench --backend mpi "$@" >"$out" 2>&1; }

run -b 8 -e 256K -f 8 --ops all -d all -o all -n 2 --json "$dir/r.json" || fail "clean run exited non-zero"
for op in all_reduce all_gather reduce_scatter broadcast sendrecv alltoall; do
  grep -q "^# Collective test starting: $op$" "$out" || fail "no table for $op"
done
[ "$(grep -c '^# Out of bounds values : 0 OK$' "$out")" -eq 6 ] || fail "expected six clean footers"
[ "$(grep -c '^# Avg bus bandwidth    : ' "$out")" -eq 6 ] || fail "expected six bandwidth footers"
grep -q "^#       size         count      type   redop    root     time   algbw   busbw  #wrong     time   algbw   busbw  #wrong$" "$out" \
  || fail "table header differs from nccl-tests'"
# Data lines: size count type redop root, then time algbw busbw #wrong twice (N/A in place for alltoall).
lines=$(grep -v '^#' "$out" | grep -E '^ +[0-9]+ +[0-9]+ +(float|half|bfloat16|int32) +(sum|prod|max|min|avg|none) +-?[0-9]+ ')
[ "$(echo "$lines" | wc -l)" -eq $(( (5*4 + 4 + 5*4 + 4 + 4 + 4) * 6 )) ] || fail "unexpected number of table lines"
bad=$(echo "$lines" | awk '$9 != 0 || ($13 != 0 && $13 != "N/A") || NF != 13')
[ -z "$bad" ] || fail "lines with wrong values or a broken layout: $bad"
grep -q '"out_of_bounds"' "$dir/r.json" || fail "json lacks out_of_bounds"
[ "$(jq '.collectives | length' "$dir/r.json")" -eq 6 ] || fail "json does not hold six collectives"
[ "$(jq '[.collectives[].results[].out_of_place.nwrong] | add' "$dir/r.json")" -eq 0 ] || fail "json reports wrong values"
[ "$(jq '.nranks' "$dir/r.json")" -eq "$np" ] || fail "json nranks"

run -b 1K -e 64K -f 8 --ops all_reduce,all_gather,broadcast -d bfloat16 --debug-corrupt-rank 1
rc=$?
[ "$rc" -ne 0 ] || fail "a run with corrupted results exited 0"
[ "$(grep -c '^# Out of bounds values : [1-9][0-9]* FAILED$' "$out")" -eq 3 ] || fail "corruption not reported per op"
wrong_lines=$(grep -v '^#' "$out" | grep -E '^ +[0-9]+ ' | awk '$9 >= 1 && $13 >= 1' | wc -l)
[ "$wrong_lines" -eq 9 ] || fail "expected #wrong >= 1 in both columns of all 9 lines, saw $wrong_lines"

run -b 1K -e 1M -f 4 --latency -n 10 || fail "latency mode exited non-zero"
grep -q 'p50(us)  *p99(us)' "$out" || fail "latency header missing"
[ "$(grep -v '^#' "$out" | grep -cE '^ +[0-9]+ ')" -eq 6 ] || fail "latency mode should print 6 sizes"

run --diagnose || fail "diagnose exited non-zero"
grep -q "^# lockstep commbench --diagnose: $np rank(s) on 1 host(s), backend mpi$" "$out" || fail "diagnose header"
for r in $(seq 0 $((np - 1))); do
  grep -Eq "^ +$r +[^ ]+ +$r +- +- " "$out" || fail "diagnose: rank $r missing from the map"
done
grep -q "^# MPI: Open MPI v[0-9.]*; pml ob1" "$out" || fail "diagnose: MPI transport line"
grep -q "^# Advice:" "$out" || fail "diagnose: advice"

run -b 1X -e 1M; [ $? -ne 0 ] || fail "a bad size was accepted"
grep -q "commbench: error: sizes must look like" "$out" || fail "bad size message"
run --ops all_reduce,bogus; [ $? -ne 0 ] || fail "a bad --ops was accepted"
echo PASS
