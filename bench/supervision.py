#!/usr/bin/python3
"""Supervision benchmarks, each against an anchor measured in the same run.

  restart  crash -> agent running again (restart policy always, no delay):
           median gap between two starts of a program that exits at once,
           under ainit vs a bare fork/exec/waitpid loop of the same program.
  ctl      `ainit ctl status` with 100 agents (hyperfine) vs a bare
           UNIX-socket round trip (fresh process, connect, one line each way).
  idle     wakeups of an idle supervisor over 10 s (/proc/PID/sched
           voluntary+involuntary switches, all threads) vs the health checks
           configured for those 10 s.
  rss      ainit's RSS supervising 100 stub agents with zmq checks, and the
           full MainPC config (stub agents, real redis/nats, in a network
           namespace), vs a bare `sleep` process; runc ~10 MB and crun
           ~3.3 MB per container (DESIGN 11, measured on a build machine).
  mainpc   full MainPC config to all-healthy, and the order its groups came
           up in, vs the same 60 processes started all at once with no
           ordering until every health port answers (the floor).

Run as root from the tree:  bench/supervision.py [--ainit build/ainit] [--only NAME ...]
No assertions: figures and ratios are printed; targets are in DESIGN 11.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = "/usr/bin/python3"


_given = set()


def free_port():
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p not in _given:
            _given.add(p)
            return p


def ms(x):
    return f"{x * 1e3:.3f} ms"


class Ainit:
    def __init__(self, ainit, tmp, config, netns=False, configs=()):
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.state = self.tmp / "state"
        self.sock = self.state / "ctl.sock"
        cfgs = []
        if config is not None:
            (self.tmp / "a.yaml").write_text(config)
            cfgs.append(str(self.tmp / "a.yaml"))
        cfgs += [str(c) for c in configs]
        args = [ainit, "run"]
        for c in cfgs:
            args += ["--config", c]
        args += ["--state-dir", str(self.state)]
        if netns:
            args = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"'] + args
        self.log = open(self.tmp / "ainit.log", "wb")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        while not self.sock.exists():
            if self.proc.poll() is not None:
                raise SystemExit(f"ainit exited: {(self.tmp / 'ainit.log').read_text()}")
            time.sleep(0.002)
        self.pid = self.ainit_pid()

    def ainit_pid(self):
        # with unshare the Popen pid execs sh then ainit: same pid
        return self.proc.pid

    def request(self, obj):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(self.sock))
            s.sendall(json.dumps(obj).encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                c = s.recv(1 << 20)
                if not c:
                    break
                buf += c
        return json.loads(buf)

    def status(self):
        return {a["name"]: a for a in self.request({"cmd": "status"})["agents"]}

    def wait_all(self, state="healthy", timeout=120, step=0.005):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                st = self.status()
            except (OSError, ValueError):
                st = {}
            if st and all(a["state"] == state for a in st.values()):
                return time.monotonic(), st
            time.sleep(step)
        raise SystemExit(f"not all {state} within {timeout}s: "
                         + ", ".join(f"{n}={a['state']}" for n, a in st.items() if a["state"] != state))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def cc(tmp, name):
    out = Path(tmp) / name
    subprocess.run(["cc", "-O2", "-o", str(out), str(ROOT / "bench" / "src" / f"{name}.c")], check=True)
    return str(out)


def starts(path):
    v = [int(x) for x in Path(path).read_text().split()]
    return [(b - a) / 1e9 for a, b in zip(v, v[1:])]


def bench_restart(a, tmp, n=400):
    stamp = cc(tmp, "stamp")
    loop = cc(tmp, "forkloop")
    f1, f2 = Path(tmp) / "ainit.stamps", Path(tmp) / "bare.stamps"
    f3 = Path(tmp) / "bare2.stamps"
    # anchor first, then ainit, then the anchor again (load on a shared
    # machine drifts: the lower of the two anchor medians is used)
    subprocess.run([loop, str(n), stamp, str(f2)], check=True)
    x = Ainit(a.ainit, Path(tmp) / "restart", f"""
version: 1
defaults: {{user: root}}
groups:
  g:
    agents:
      crash: {{command: [{stamp}, {f1}], restart: {{policy: always, delay: 0ms, max_delay: 0ms, burst: 10000, within: 1s}}}}
""")
    end = time.monotonic() + 120
    while (not f1.exists() or len(f1.read_text().split()) < n + 1) and time.monotonic() < end:
        time.sleep(0.05)
    x.stop()
    subprocess.run([loop, str(n), stamp, str(f3)], check=True)
    d1 = starts(f1)[:n]
    a1, a2 = statistics.median(starts(f2)), statistics.median(starts(f3))
    m1, m2 = statistics.median(d1), min(a1, a2)
    p90 = sorted(d1)[int(len(d1) * 0.9)]
    b = starts(f2) + starts(f3)
    b90 = sorted(b)[int(len(b) * 0.9)]
    print(f"restart: crash -> running again, median {ms(m1)} (p90 {ms(p90)}, {len(d1)} restarts)"
          f" | anchor bare fork/exec/wait loop {ms(m2)} (runs: {ms(a1)}, {ms(a2)}; p90 {ms(b90)})"
          f" | ratio {m1 / m2:.2f}  [target < 5 ms]")


def hyperfine(cmds, runs=300):
    out = tempfile.mktemp(suffix=".json")
    args = ["hyperfine", "-N", "--warmup", "30", "--runs", str(runs), "--export-json", out]
    for name, cmd in cmds:
        args += ["-n", name, cmd]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r = {x["command"]: x for x in json.load(open(out))["results"]}
    os.unlink(out)
    return r


def bench_ctl(a, tmp):
    if not shutil.which("hyperfine"):
        print("ctl: skipped, hyperfine not installed (mk/deps.sh)")
        return
    rt = cc(tmp, "uxrt")
    agents = "\n".join(f"      a{i}: {{command: [sleep, \"3600\"], port: {20000 + i}}}" for i in range(100))
    x = Ainit(a.ainit, Path(tmp) / "ctl", f"""
version: 1
defaults: {{user: root}}
groups:
  g:
    agents:
{agents}
""")
    x.wait_all()
    echo = str(Path(tmp) / "echo.sock")
    srv = subprocess.Popen([rt, "serve", echo])
    while not os.path.exists(echo):
        time.sleep(0.01)
    req = '{"cmd":"status"}'
    r = hyperfine([("ainit ctl status", f"{a.ainit} ctl --socket {x.sock} status"),
                   ("raw status round trip", f"{rt} {x.sock} {req}"),
                   ("anchor: bare round trip", f"{rt} {echo} {req}")])
    srv.kill()
    srv.wait()
    x.stop()
    anc = r["anchor: bare round trip"]["median"]
    for k in ("ainit ctl status", "raw status round trip", "anchor: bare round trip"):
        print(f"ctl: {k:<24} median {ms(r[k]['median'])} (mean {ms(r[k]['mean'])})"
              f" | ratio to anchor {r[k]['median'] / anc:.2f}")
    print("ctl: [target: ainit ctl status with 100 agents < 2 ms]")


def switches(pid):
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        for line in open(f"/proc/{pid}/task/{t}/sched"):
            if line.startswith(("nr_voluntary_switches", "nr_involuntary_switches")):
                total += int(line.split(":")[1])
    return total


def bench_idle(a, tmp, secs=10):
    stub = str(Path(a.build) / "agents" / "stub-agent")
    # (1) 100 agents, no health checks: nothing to do
    agents = "\n".join(f"      a{i}: {{command: [sleep, \"3600\"]}}" for i in range(100))
    x = Ainit(a.ainit, Path(tmp) / "idle1", f"""
version: 1
defaults: {{user: root}}
groups:
  g:
    agents:
{agents}
""")
    x.wait_all()
    time.sleep(1)
    s0 = switches(x.pid)
    time.sleep(secs)
    w1 = switches(x.pid) - s0
    x.stop()
    # (2) 20 stub agents with zmq checks every 1 s
    n, iv = 20, 1.0
    lines = []
    for i in range(n):
        p, h = free_port(), free_port()
        lines.append(f"      s{i}: {{command: [{stub}], port: {p}, health_port: {h}, health: {{zmq: {h}, interval: 1s}}}}")
    x = Ainit(a.ainit, Path(tmp) / "idle2", "version: 1\ndefaults: {user: root}\ngroups:\n  g:\n    agents:\n"
              + "\n".join(lines) + "\n")
    x.wait_all()
    time.sleep(1.5)
    c0 = sum(a_["checks"] for a_ in (x.request({"cmd": "health", "target": f"s{i}"})["probe"] for i in range(n)))
    s0 = switches(x.pid)
    time.sleep(secs)
    w2 = switches(x.pid) - s0
    c1 = sum(a_["checks"] for a_ in (x.request({"cmd": "health", "target": f"s{i}"})["probe"] for i in range(n)))
    x.stop()
    checks = c1 - c0 - 0  # the health requests above are outside the window
    print(f"idle: 100 agents, no checks: {w1} wakeups in {secs} s | anchor: configured checks 0"
          f"  [target: 0]")
    print(f"idle: {n} agents, zmq check every {iv:.0f} s: {w2} wakeups in {secs} s for {checks} checks"
          f" (configured {int(n * secs / iv)}) | {w2 / max(checks, 1):.2f} wakeups per check"
          f" (timer, peer greeting, reply; timers of checks due together share a wakeup)  [target: only the checks]")


def rss(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k = line.split(":")[0]
        if k in ("VmRSS", "RssAnon", "RssFile"):
            out[k] = int(line.split()[1])
    for line in open(f"/proc/{pid}/smaps_rollup"):
        if line.startswith("Pss:"):
            out["Pss"] = int(line.split()[1])
    return out


def fmt_rss(r):
    return (f"RSS {r['VmRSS'] / 1024:.2f} MiB (anon {r['RssAnon'] / 1024:.2f}, file {r['RssFile'] / 1024:.2f},"
            f" PSS {r['Pss'] / 1024:.2f})")


def mainpc_override(a, tmp, data):
    ov = Path(tmp) / "stub-mainpc.yaml"
    with open(ov, "w") as f:
        subprocess.run([PY, str(ROOT / "configs" / "stub-override.py"), str(ROOT / "configs" / "mainpc.yaml"),
                        "--agents", str(Path(a.build) / "agents"), "--host", "--data-dir", str(data)],
                       stdout=f, check=True)
    return ov


def bench_rss(a, tmp):
    stub = str(Path(a.build) / "agents" / "stub-agent")
    bare = subprocess.Popen(["sleep", "60"])
    time.sleep(0.2)
    anchor = rss(bare.pid)
    bare.kill()
    bare.wait()
    lines = []
    for i in range(100):
        p, h = free_port(), free_port()
        lines.append(f"      s{i}: {{command: [{stub}], port: {p}, health_port: {h}, health: {{zmq: {h}}}}}")
    x = Ainit(a.ainit, Path(tmp) / "rss", "version: 1\ndefaults: {user: root}\ngroups:\n  g:\n    agents:\n"
              + "\n".join(lines) + "\n")
    x.wait_all()
    time.sleep(1)
    r100 = rss(x.pid)
    x.stop()
    print(f"rss: 100 stub agents (zmq checks): {fmt_rss(r100)}"
          f" | anchor bare `sleep`: {fmt_rss(anchor)} | runc ~10 MB, crun ~3.3 MB per container"
          f"  [target < 4 MiB]")
    if shutil.which("unshare") and shutil.which("redis-server") and shutil.which("nats-server"):
        data = Path(tmp) / "mainpc-data"
        x = Ainit(a.ainit, Path(tmp) / "rss-mainpc", None, netns=True,
                  configs=[ROOT / "configs" / "mainpc.yaml", mainpc_override(a, tmp, data)])
        x.wait_all()
        time.sleep(1)
        r = rss(x.pid)
        x.stop()
        print(f"rss: full MainPC (61 agents, stubs + redis + nats): {fmt_rss(r)}  [target < 4 MiB]")
    # where it goes
    print("rss: largest mappings of ainit (KiB):", end="")
    x = Ainit(a.ainit, Path(tmp) / "rss2", "version: 1\ndefaults: {user: root}\ngroups:\n  g:\n    agents:\n"
              + "\n".join(lines[:10]) + "\n")
    x.wait_all()
    per = {}
    name = ""
    for line in open(f"/proc/{x.pid}/smaps"):
        f = line.split()
        if "-" in f[0] and len(f) >= 5 and not f[0].endswith(":"):
            name = os.path.basename(f[5]) if len(f) > 5 else "[anon]"
        elif f[0] == "Rss:":
            per[name] = per.get(name, 0) + int(f[1])
    x.stop()
    print(" " + ", ".join(f"{k} {v}" for k, v in sorted(per.items(), key=lambda kv: -kv[1])[:6]))


ANCHOR_INNER = r'''
import os, socket, subprocess, sys, time, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
ov = yaml.safe_load(open(sys.argv[2]))
agents, ports = [], []
for g, gv in cfg["groups"].items():
    for n, av in gv["agents"].items():
        o = (((ov.get("groups") or {}).get(g) or {}).get("agents") or {}).get(n) or {}
        cmd = o.get("command") or av["command"]
        env = dict(os.environ, AINIT_AGENT=n, AINIT_GROUP=g)
        if av.get("port"): env["AGENT_PORT"] = str(av["port"])
        if av.get("health_port"): env["HEALTH_CHECK_PORT"] = str(av["health_port"])
        agents.append((cmd, env))
        h = av.get("health") or {}
        ports.append(h.get("tcp") or h.get("zmq") or av.get("health_port") or av.get("port"))
t0 = time.monotonic()
procs = [subprocess.Popen(c, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/") for c, e in agents]
left = set(p for p in ports if p)
while left:
    for p in list(left):
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", p)); left.discard(p)
        except OSError:
            pass
        s.close()
    time.sleep(0.002)
print(time.monotonic() - t0)
for p in procs: p.kill()
for p in procs: p.wait()
'''


def bench_mainpc(a, tmp):
    if not (shutil.which("unshare") and shutil.which("redis-server") and shutil.which("nats-server")):
        print("mainpc: skipped (needs unshare, redis-server, nats-server)")
        return
    data = Path(tmp) / "mainpc-data2"
    ov = mainpc_override(a, tmp, data)
    inner = Path(tmp) / "anchor_inner.py"
    inner.write_text(ANCHOR_INNER)
    anc = float(subprocess.run(["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', PY, str(inner),
                                str(ROOT / "configs" / "mainpc.yaml"), str(ov)],
                               capture_output=True, text=True, check=True).stdout.split()[-1])
    x = Ainit(a.ainit, Path(tmp) / "mainpc", None, netns=True,
              configs=[ROOT / "configs" / "mainpc.yaml", ov])
    t_all, st = x.wait_all(step=0.002)
    now = time.monotonic()
    total = t_all - x.t0
    groups = {}
    for ag in st.values():
        g = groups.setdefault(ag["group"], {"start": 1e9, "healthy": 0})
        started = now - ag["uptime_ms"] / 1e3 - x.t0
        healthy = now - ag["since_ms"] / 1e3 - x.t0
        g["start"] = min(g["start"], started)
        g["healthy"] = max(g["healthy"], healthy)
    x.stop()
    print(f"mainpc: 60 agents all healthy {total:.3f} s after `ainit run` (status polled every 2 ms)"
          f" | anchor: same processes started at once, no ordering, until every health port answers"
          f" {anc:.3f} s | ratio {total / anc:.2f}")
    print("mainpc: group order (first agent started / all healthy, s after launch):")
    for name, g in sorted(groups.items(), key=lambda kv: kv[1]["healthy"]):
        print(f"mainpc:   {name:<22} {g['start']:.3f} / {g['healthy']:.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ainit", default=str(ROOT / "build" / "ainit"))
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--only", nargs="*", default=["restart", "ctl", "idle", "rss", "mainpc"])
    a = ap.parse_args()
    a.ainit = os.path.abspath(a.ainit)
    if os.geteuid() != 0:
        print("bench/supervision.py: run as root", file=sys.stderr)
        return 1
    for need in (a.ainit, os.path.join(a.build, "agents", "stub-agent")):
        if not os.path.exists(need):
            print(f"bench/supervision.py: {need} missing (make)", file=sys.stderr)
            return 77
    with tempfile.TemporaryDirectory(prefix="ainit-bench-") as tmp:
        for name in a.only:
            globals()[f"bench_{name}"](a, tmp)
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
