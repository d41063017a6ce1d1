#!/usr/bin/env bash
# The real-GPU check of docs/gpu.md, on a machine with an NVIDIA GPU, its
# driver, cgroup v2 and root. Run from the bundle `make gpu-bundle` builds
# (ainit, gpu-probe, lib/, this script):
#
#   bash build/gpu-bundle/device-check.sh [OUTDIR]
#
# Every step prints its command and exit status and goes on; the log and a
# summary land in OUTDIR (default $OUT, else /tmp/ainit-gpu-check).
set -u
B=$(cd "$(dirname "$0")" && pwd)
OUTDIR=${1:-${OUT:-/tmp/ainit-gpu-check}}
mkdir -p "$OUTDIR"
export LD_LIBRARY_PATH=$B/lib
A=$B/ainit
P=$B/gpu-probe
W=$(mktemp -d /tmp/ainit-gpu.XXXXXX)
chmod 755 "$W"
CFG=$W/appliance.yaml
SOCK=$W/state/ctl.sock
PORT=18301

step() { printf '\n### %s\n' "$*"; }
run() {
	printf '$ %s\n' "$*"
	"$@"
	local rc=$?
	printf '[exit %d]\n' "$rc"
	return $rc
}

cat > "$CFG" <<EOF
version: 1
defaults:
  user: root
groups:
  gpu-infra:
    gpu: all
    resources: {memory: 8GiB, memory_high: 6GiB, cpus: 2, cpu_weight: 200, pids: 256}
    agents:
      gpu-probe:
        command: [$P, --serve, "$PORT"]
        environment: {LD_LIBRARY_PATH: $B/lib, ZMQ_BIND_IP: 127.0.0.1}
        health: {zmq: $PORT, interval: 5s, timeout: 5s, retries: 3, start_period: 60s}
  plain:
    capabilities: [CAP_MKNOD]
    resources: {memory: 256MiB, pids: 64}
    agents:
      no-gpu:
        command: [/bin/sh, -c, "$P; echo gpu-probe exit \$?; exec sleep infinity"]
EOF

main() {
	step "host"
	run uname -r
	run cat /proc/driver/nvidia/version
	run nvidia-smi --query-gpu=index,name,memory.total,driver_version,pci.bus_id --format=csv
	run grep -E 'nvidia' /proc/devices
	run ls -l /dev/nvidia-caps /dev/nvidiactl /dev/nvidia0 /dev/nvidia-uvm /dev/nvidia-uvm-tools
	run stat -fc %T /sys/fs/cgroup
	run cat /sys/fs/cgroup/cgroup.controllers
	run ldd "$A"

	step "ainit gpu: what this host offers groups"
	run "$A" gpu
	step "gpu-probe on the host, outside any sandbox (baseline)"
	run "$P" | tee "$OUTDIR/probe-host.json"

	step "config"
	cat "$CFG"
	step "ainit check"
	run "$A" check "$CFG"
	step "ainit gpu plan: what each group gets"
	run "$A" gpu plan "$CFG"

	step "ainit sandbox: gpu-probe in the gpu: all group"
	run "$A" sandbox --config "$CFG" gpu-infra -- "$P" | tee "$OUTDIR/probe-gpu-group.json"
	step "ainit sandbox: what the gpu: all group sees"
	run "$A" sandbox --config "$CFG" gpu-infra -- /bin/sh -c \
		'ls -l /dev; env | grep -E "^(CUDA|NVIDIA)_"; cat /proc/self/cgroup'

	step "ainit sandbox: gpu-probe in the group without gpu: (must fail)"
	run "$A" sandbox --config "$CFG" plain -- "$P" | tee "$OUTDIR/probe-plain-group.json"
	step "ainit sandbox: group without gpu:, root with CAP_MKNOD makes the nodes and tries to open them (must be denied)"
	run "$A" sandbox --config "$CFG" plain -- /bin/sh -c '
		ls -l /dev
		mknod /dev/nvidiactl c 195 255 && mknod /dev/nvidia0 c 195 0 && ls -l /dev/nvidiactl /dev/nvidia0
		for n in /dev/nvidiactl /dev/nvidia0; do
			if (exec 3<>"$n"); then echo "OPENED $n"; else echo "denied $n"; fi
		done'

	step "ainit run --sandbox: both groups under the supervisor, each in its sandbox"
	"$A" run --sandbox --config "$CFG" --state-dir "$W/state" >"$W/run.log" 2>&1 &
	local sup=$! i
	for i in $(seq 1 120); do
		[ -S "$SOCK" ] && "$A" ctl --socket "$SOCK" status >/dev/null 2>&1 && break
		sleep 0.5
	done
	for i in $(seq 1 60); do # the probe's first health check
		"$A" ctl --socket "$SOCK" status 2>/dev/null | grep -Eq 'gpu-probe +(healthy|failed)' && break
		sleep 1
	done
	run "$A" ctl --socket "$SOCK" status
	run "$A" ctl --socket "$SOCK" status --json | tee "$W/status.json"
	run "$A" ctl --socket "$SOCK" logs no-gpu -n 20
	run "$A" ctl --socket "$SOCK" logs gpu-probe -n 20
	run "$A" ctl --socket "$SOCK" health gpu-probe

	step "cgroup v2 limits, read back from the groups' cgroup files"
	local pid cg f cg2
	cg2=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
	for pid in $(grep -o '"pid": *[0-9]*' "$W/status.json" | grep -o '[0-9]*$'); do
		[ "$pid" -gt 0 ] 2>/dev/null || continue
		cg=$cg2$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
		echo "pid $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-60)): $cg"
		for f in memory.max memory.high cpu.max cpu.weight pids.max pids.current memory.current; do
			if [ -r "$cg/$f" ]; then printf '  %-15s %s\n' "$f" "$(cat "$cg/$f")"
			else printf '  %-15s (no such file: controller not enabled)\n' "$f"; fi
		done
		command -v bpftool >/dev/null && bpftool cgroup show "$cg"
	done

	step "stop"
	run "$A" ctl --socket "$SOCK" poweroff
	for i in $(seq 1 30); do kill -0 "$sup" 2>/dev/null || break; sleep 0.5; done
	kill "$sup" 2>/dev/null
	wait "$sup"
	echo "[supervisor exit $?]"
	step "supervisor log"
	cat "$W/run.log"
}

summary() {
	step "summary"
	local g p
	g=$(grep -o '"name":"[^"]*"\|"total_memory":[0-9]*\|"round_trip":{[^}]*}' "$OUTDIR/probe-gpu-group.json" | tr '\n' ' ')
	p=$(grep -o '"status":"[a-z]*"\|"error":"[^"]*"' "$OUTDIR/probe-plain-group.json" | head -2 | tr '\n' ' ')
	echo "gpu: all group, gpu-probe: $g"
	echo "group without gpu:, gpu-probe: $p"
}

main 2>&1 | tee "$OUTDIR/gpu-check.log"
summary 2>&1 | tee -a "$OUTDIR/gpu-check.log"
rm -rf "$W"
