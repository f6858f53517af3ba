#!/usr/bin/env bash
# Start RabbitMQ and a one-node Slurm cluster for the tests that need a real broker and a real scheduler, and print
# the settings as shell assignments. Needs root (apt-get, daemons); without it, print nothing: those tests then
# skip with the reason. Safe to run again: running services are reused.
set -uo pipefail
[ "$(id -u)" -eq 0 ] || { echo "# not root: RabbitMQ and Slurm not started" >&2; exit 0; }
need=()
command -v rabbitmq-server >/dev/null || need+=(rabbitmq-server)
command -v slurmctld >/dev/null || need+=(slurm-wlm)
if [ ${#need[@]} -gt 0 ]; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >&2 || exit 0
fi

# RabbitMQ: no consumer timeout (fits run for hours), detached as root.
mkdir -p /etc/rabbitmq
echo '[ {rabbit, [ {consumer_timeout, undefined} ]} ].' > /etc/rabbitmq/advanced.config
if ! rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
  rabbitmq-server -detached >&2 2>/dev/null
fi
rabbit=0
for _ in $(seq 1 60); do rabbitmq-diagnostics -q ping >/dev/null 2>&1 && { rabbit=1; break; }; sleep 1; done

# Slurm: munge, then slurmctld and slurmd on this host, one partition, short kill wait so that time limits bite.
host=$(hostname)
mkdir -p /run/munge /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
chown munge: /run/munge 2>/dev/null || true
[ -f /etc/munge/munge.key ] || { /usr/sbin/mungekey --create >&2 2>/dev/null || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; chown munge: /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged >&2
cpus=$(nproc)
memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=mlip
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
KillWait=5
OverTimeLimit=0
MinJobAge=600
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
pgrep -x slurmctld >/dev/null || slurmctld >&2
pgrep -x slurmd >/dev/null || slurmd >&2
slurm=0
for _ in $(seq 1 30); do
  sinfo -h -o %T 2>/dev/null | grep -qE "idle|mixed|allocated" && { slurm=1; break; }
  scontrol update nodename="$host" state=resume >/dev/null 2>&1
  sleep 1
done

[ $rabbit -eq 1 ] && echo "export MLIP_TRAINER_RABBITMQ=1"
[ $slurm -eq 1 ] && echo "export MLIP_TRAINER_SLURM=1"
exit 0
