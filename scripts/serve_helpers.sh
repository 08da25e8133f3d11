# Sourced by scripts and tests that start `lockstep serve` under mpirun in the background.

# wait_for_server LOG PID [SECONDS]: prints the server's /v1 URL once its log names it and
# /health answers 200; returns 1 (printing nothing) if PID exits first or SECONDS (60) pass.
wait_for_server() {
  local log=$1 pid=$2 seconds=${3:-60} url=
  for _ in $(seq 1 $((seconds * 5))); do
    url=$(grep -o 'OpenAI API at http://[^ ]*/v1' "$log" 2>/dev/null | head -n 1 | sed 's/OpenAI API at //' || true)
    if [ -n "$url" ] && curl -sf "${url%/v1}/health" >/dev/null; then
      echo "$url"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}

# rank0_pid PATTERN: the pid of the Open MPI rank 0 process whose command line matches PATTERN
# (SIGTERM to it drains the server; signalling mpirun would end the job at once).
rank0_pid() {
  local p
  for p in $(pgrep -f "$1"); do
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=0"; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

# server_test_scaffold: for a test script that starts a server: $tmp (a scratch directory,
# removed on exit), $server_pid (set it; the process is killed on exit), and fail MESSAGE (prints
# it and the tail of $tmp/server.log, exits 1).
server_test_scaffold() {
  tmp=$(mktemp -d)
  server_pid=
  trap '[ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
  fail() { echo "FAIL: $*"; tail -n 30 "$tmp/server.log"; exit 1; }
}
