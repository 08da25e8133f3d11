#!/usr/bin/env bash
# Starts a one-node Slurm cluster on this machine for tests: munged, slurmctld and slurmd with
# a generated slurm.conf in a private directory (no cgroups, no accounting, its own ports, eight
# device-less GPU slots).
# Source it: `. local_slurm.sh DIR` exports SLURM_CONF and defines slurm_stop (call it on exit).
# Needs Debian's slurm-wlm and munge (scripts/setup.sh installs them).
slurm_dir=$1
mkdir -p "$slurm_dir"/{munge,state,spool,log}
host=$(hostname -s)
cpus=$(nproc)
port_base=$((20000 + RANDOM % 20000))
dd if=/dev/urandom of="$slurm_dir/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$slurm_dir/munge/munge.key"
munged --force --key-file="$slurm_dir/munge/munge.key" --socket="$slurm_dir/munge/munge.socket" \
  --pid-file="$slurm_dir/munge/munged.pid" --log-file="$slurm_dir/log/munged.log" \
  --seed-file="$slurm_dir/munge/munge.seed" || { echo "local_slurm: munged did not start"; return 1; }
cat >"$slurm_dir/slurm.conf" <<CONF
ClusterName=lockstep-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port_base
SlurmdPort=$((port_base + 1))
AuthType=auth/munge
AuthInfo=socket=$slurm_dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$slurm_dir/state
SlurmdSpoolDir=$slurm_dir/spool
SlurmctldPidFile=$slurm_dir/slurmctld.pid
SlurmdPidFile=$slurm_dir/slurmd.pid
SlurmctldLogFile=$slurm_dir/log/slurmctld.log
SlurmdLogFile=$slurm_dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmdTimeout=30
GresTypes=gpu
NodeName=$host CPUs=$cpus Gres=gpu:8 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
# Eight GPU slots backed by plain files, so the scripts' `--gpus-per-node=8` is satisfiable on a
# CPU-only node (jobs there run with LOCKSTEP_CPU=1).
mkdir -p "$slurm_dir/dev" && touch "$slurm_dir"/dev/nvidia{0..7}
echo "NodeName=$host Name=gpu File=$slurm_dir/dev/nvidia[0-7]" >"$slurm_dir/gres.conf"
export SLURM_CONF=$slurm_dir/slurm.conf
slurmctld -D -f "$SLURM_CONF" >>"$slurm_dir/log/slurmctld.out" 2>&1 &
slurmd -D -f "$SLURM_CONF" >>"$slurm_dir/log/slurmd.out" 2>&1 &
slurm_stop() {
  [ -f "$slurm_dir/slurmd.pid" ] && kill "$(cat "$slurm_dir/slurmd.pid")" 2>/dev/null
  [ -f "$slurm_dir/slurmctld.pid" ] && kill "$(cat "$slurm_dir/slurmctld.pid")" 2>/dev/null
  [ -f "$slurm_dir/munge/munged.pid" ] && kill "$(cat "$slurm_dir/munge/munged.pid")" 2>/dev/null
  pkill -f "slurm.*-f $SLURM_CONF" 2>/dev/null
  true
}
for _ in $(seq 1 60); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed)'; then return 0; fi
  sleep 0.5
done
echo "local_slurm: the node did not become idle; logs:"
tail -n 5 "$slurm_dir"/log/*.log
return 1
