#!/usr/bin/python3
"""Per-agent start inside an existing sandbox: `ainit run --sandbox` restarts
an agent running /bin/true as fast as its policy allows (delay 0); the rate
of restarts over a few seconds gives the cost of one supervised start
(clone3 into the group's cgroup and pid namespace, setns, no_new_privs,
caps, seccomp, execve, exit, reap), against the same without --sandbox, in
the same run. Run as root: bench/sandbox_restart.py [AINIT] [SECONDS]"""
import json
import os
import subprocess
import sys
import tempfile
import time

AINIT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/ainit")
SECS = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
CONFIG = """version: 1
groups:
  g:
    user: root
    network: none
    agents:
      t: {command: [/bin/true], restart: {policy: always, delay: 0ms, max_delay: 0ms, burst: 10000, within: 1s}}
"""


def restarts(sock):
    r = subprocess.run([AINIT, "ctl", "--socket", sock, "status", "--json"],
                       capture_output=True, text=True, timeout=10)
    return json.loads(r.stdout)["agents"][0]["restarts"]


def rate(extra):
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "r.yaml")
        open(cfg, "w").write(CONFIG)
        st = os.path.join(d, "st")
        sock = os.path.join(st, "ctl.sock")
        p = subprocess.Popen([AINIT, "run", "-c", cfg, "-d", st, *extra],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not os.path.exists(sock):
                time.sleep(0.01)
            time.sleep(0.3)
            a, t0 = restarts(sock), time.monotonic()
            time.sleep(SECS)
            b, t1 = restarts(sock), time.monotonic()
        finally:
            p.terminate()
            p.wait()
        return (t1 - t0) * 1e3 / max(1, b - a), b - a


plain, n0 = rate([])
sbx, n1 = rate(["--sandbox"])
print(f"supervised start+exit of /bin/true: plain {plain:.3f} ms ({n0} restarts), "
      f"in its sandbox {sbx:.3f} ms ({n1} restarts), ratio {sbx / plain:.2f}")
