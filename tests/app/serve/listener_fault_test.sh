#!/usr/bin/env bash
# `lockstep serve` whose HTTP listener dies (accept() fails with an error cpp-httplib does not
# retry): the job must end with a message and a non-zero exit, every rank, instead of holding its
# GPUs while no client can connect. The fault: the listening socket, borrowed from rank 0 with
# pidfd_getfd(2) (Linux 5.6+, ptrace rights), is shut down under the accept loop.
# usage: listener_fault_test.sh MPIRUN LOCKSTEP FIXTURES_DIR
set -u
mpirun=$1 lockstep=$2 fixtures=$3
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../../scripts/serve_helpers.sh"
server_test_scaffold

"$mpirun" --oversubscribe -np 2 "$lockstep" serve --model "$fixtures/qwen2-tiny" -tp 2 --kv-cache-memory 8M \
  --port 0 --host 127.0.0.1 >"$tmp/server.log" 2>&1 &
server_pid=$!
url=$(wait_for_server "$tmp/server.log" "$server_pid") || fail "the server did not come up"
port=${url##*:}; port=${port%/v1}
rank0=$(rank0_pid "lockstep serve --model $fixtures/qwen2-tiny") || fail "no rank 0 process"
curl -sf "$url/completions" -H "Content-Type: application/json" \
  -d '{"model": "'"$fixtures/qwen2-tiny"'", "prompt": [1, 2, 3], "max_tokens": 2}' >/dev/null || fail "a first completion"

python3 - "$rank0" "$port" <<'PY' || exit $?
import ctypes, os, socket, sys
pid, port = int(sys.argv[1]), int(sys.argv[2])
inode = None  # the listening socket on the port (state 0A), from the process's view of TCP
for table in ("tcp", "tcp6"):
    for line in open(f"/proc/{pid}/net/{table}").readlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == port and f[3] == "0A":
            inode = f[9]
if inode is None:
    sys.exit("FAIL: no listening socket on port %d" % port)
fd = next(int(n) for n in os.listdir(f"/proc/{pid}/fd")
          if os.readlink(f"/proc/{pid}/fd/{n}") == f"socket:[{inode}]")
libc = ctypes.CDLL(None, use_errno=True)
mine = libc.syscall(438, os.pidfd_open(pid), fd, 0)  # pidfd_getfd
if mine < 0:
    print("SKIP: pidfd_getfd: %s (needs Linux 5.6+ and ptrace rights)" % os.strerror(ctypes.get_errno()))
    sys.exit(77)
socket.socket(fileno=mine).shutdown(socket.SHUT_RDWR)
PY
rc=$?
[ $rc = 77 ] && exit 0
[ $rc = 0 ] || fail "could not break the listener"

for _ in $(seq 1 150); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
kill -0 "$server_pid" 2>/dev/null && fail "the job still runs 30 s after its listener died"
wait "$server_pid"; rc=$?; server_pid=
[ $rc != 0 ] || fail "the job exited 0 after its listener died"
grep -q "stopped accepting connections" "$tmp/server.log" || fail "no message naming the dead listener"
echo "PASS: a dead listener ends the job (exit $rc) with: $(grep -o 'the HTTP listener[^;]*' "$tmp/server.log" | head -1)"
