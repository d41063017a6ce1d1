#!/usr/bin/env bash
# Start-to-exit of one sandboxed /bin/true (all namespaces incl. net, cgroup,
# seccomp default profile, no capabilities, read-only root) through
# `ainit sandbox`, `crun run`, `runc run` on the same busybox rootfs and the
# same OCI bundle (written by `ainit export oci` from the same config), and
# a bare fork/exec, all in the same hyperfine run. Prints medians, p90 and
# ratios. Run as root: bench/sandbox.sh [AINIT] [RUNS]
#
# crun 1.8 refuses hybrid cgroup hosts whose cgroup v2 lists a controller;
# the whole run therefore happens in a private mount namespace where
# /sys/fs/cgroup/unified is unmounted (crun then runs with
# --cgroup-manager=disabled, i.e. without any cgroup work: that favours crun)
# and cgroup2 is mounted elsewhere for ainit.
set -euo pipefail
AINIT=$(realpath "${1:-build/ainit}")
RUNS=${2:-300}
[ "$(id -u)" -eq 0 ] || { echo "bench/sandbox.sh: run as root" >&2; exit 1; }
for t in hyperfine runc crun busybox python3; do
	command -v "$t" >/dev/null || { echo "bench/sandbox.sh: $t missing (mk/deps.sh)" >&2; exit 1; }
done
if [ -z "${AINIT_BENCH_INNER:-}" ]; then
	exec unshare -m --propagation private env AINIT_BENCH_INNER=1 "$0" "$AINIT" "$RUNS"
fi

W=$(mktemp -d /tmp/ainit-bench.XXXXXX)
trap 'umount "$W/cg2" 2>/dev/null || true; rm -rf "$W"' EXIT
if mountpoint -q /sys/fs/cgroup/unified; then
	umount /sys/fs/cgroup/unified
	mkdir -p "$W/cg2" && mount -t cgroup2 none "$W/cg2"
fi

R=$W/rootfs
mkdir -p "$R"/{bin,etc,tmp,run,dev,proc,sys}
cp "$(command -v busybox)" "$R/bin/busybox"
for x in sh true; do ln -s busybox "$R/bin/$x"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
echo 'root:x:0:' >"$R/etc/group"
cat >"$W/bench.yaml" <<YAML
version: 1
groups:
  bench:
    network: none
    seccomp: default
    capabilities: []
    agents:
      t: {command: [/bin/true]}
YAML
"$AINIT" export oci "$W/bench.yaml" bench -o "$W/bundle" --root "$R"
# Same behaviour check before timing: every runner must exit 0.
"$AINIT" sandbox --config "$W/bench.yaml" --root "$R" bench -- /bin/true
runc run -b "$W/bundle" ainit-bench-runc
crun --cgroup-manager=disabled run -b "$W/bundle" ainit-bench-crun

hyperfine -N -w 20 -r "$RUNS" --export-json "$W/h.json" \
	-n ainit "$AINIT sandbox --config $W/bench.yaml --root $R bench -- /bin/true" \
	-n crun "crun --cgroup-manager=disabled run -b $W/bundle ainit-bench-crun" \
	-n runc "runc run -b $W/bundle ainit-bench-runc" \
	-n fork/exec "$R/bin/true" >"$W/hyperfine.txt"

python3 - "$W/h.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
rs = {r["command"]: sorted(r["times"]) for r in res}
# CPU time (user + system of the process and the children it reaped) per
# run: much less sensitive than wall time to a busy machine.
cpu = {r["command"]: (r["user"] + r["system"]) * 1e3 for r in res}
med = lambda t: t[len(t) // 2] * 1e3
p90 = lambda t: t[int(len(t) * 0.9)] * 1e3
a = med(rs["ainit"])
print(f"{'runner':<10} {'median ms':>10} {'p90 ms':>8} {'x ainit':>8} {'cpu ms':>8} {'cpu x':>6}")
for n in ("ainit", "crun", "runc", "fork/exec"):
    print(f"{n:<10} {med(rs[n]):>10.2f} {p90(rs[n]):>8.2f} {med(rs[n]) / a:>8.2f}"
          f" {cpu[n]:>8.2f} {cpu[n] / cpu['ainit']:>6.2f}")
print(f"runc/ainit = {med(rs['runc']) / a:.1f}x (target >= 10), "
      f"crun/ainit = {med(rs['crun']) / a:.1f}x (target >= 3), "
      f"ainit/fork-exec = {a / med(rs['fork/exec']):.1f}x")
PY

# The steady state: one agent start inside an existing sandbox under the
# supervisor (what a restart costs), against a plain supervised start.
/usr/bin/python3 "$(dirname "$(realpath "$0")")/sandbox_restart.py" "$AINIT" 3
