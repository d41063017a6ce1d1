"""`ainit run --sandbox`: agents supervised inside their groups' sandboxes
(the same path PID 1 takes). Seen from inside, through a volume."""
import os
import time
from pathlib import Path

import pytest

from conftest import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root")


def status_of(text):
    return {k: v.strip() for k, v in (l.split(":", 1) for l in text.splitlines() if ":" in l)}


def test_agents_run_in_their_sandbox(ainit_run, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    a = ainit_run(f"""
version: 1
groups:
  core:
    user: root
    network: none
    capabilities: [CAP_NET_BIND_SERVICE]
    volumes: ['{out}:/mnt']
    agents:
      w: {{command: [sh, -c, "cat /proc/self/status > /mnt/w; hostname > /mnt/h; ls /sys/class/net > /mnt/n; echo $$ > /mnt/pid; sleep 300"]}}
      w2: {{command: [sh, -c, "cat /proc/1/comm > /mnt/w2; sleep 300"]}}
  bad:
    user: no-such-user
    agents:
      b: {{command: ["true"]}}
  other:
    user: root
    agents:
      o: {{command: [sleep, "300"]}}
""", extra_args=("--sandbox",))
    wait_for(lambda: (out / "pid").exists() and (out / "w2").exists(), what="agents wrote")
    time.sleep(0.1)
    s = status_of((out / "w").read_text())
    for k in ("CapEff", "CapBnd", "CapAmb"):
        assert s[k] == "0000000000000400"
    assert s["NoNewPrivs"] == "1" and s["Seccomp"] == "2"
    assert (out / "h").read_text().strip() == "core"
    assert (out / "n").read_text().split() == ["lo"]
    # Both agents share one holder (PID 1 of the group's pid namespace).
    assert (out / "w2").read_text().strip() == "ainit-holder"
    assert int((out / "pid").read_text()) < 10
    # The supervisor still sees the host pid, and the bad group fails alone.
    st = a.status()
    assert st["w"]["state"] in ("healthy", "starting") and st["w"]["pid"] > 0
    assert st["o"]["state"] in ("healthy", "starting")
    b = a.wait_state("b", "failed")
    assert "no-such-user" in b.get("reason", "") + str(b), b
    # Restarting an agent keeps the sandbox: same pid namespace (holder).
    ns_before = os.readlink(f"/proc/{st['w']['pid']}/ns/pid")
    assert ns_before != os.readlink("/proc/self/ns/pid")
    assert ns_before == os.readlink(f"/proc/{st['w2']['pid']}/ns/pid")
    (out / "pid").unlink()
    r = a.ctl("restart", "w")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: (out / "pid").exists(), what="w restarted")
    pid2 = a.agent("w")["pid"]
    assert pid2 != st["w"]["pid"]
    assert os.readlink(f"/proc/{pid2}/ns/pid") == ns_before
    pid = a.proc.pid
    assert a.stop() == 0
    # ainit removed its cgroups.
    cg = Path("/sys/fs/cgroup/unified")
    if cg.exists():
        assert not (cg / f"ainit.{pid}").exists()


def test_notify_reaches_the_supervisor_from_inside(ainit_run, tmp_path):
    # sd_notify READY=1 from inside a sandbox (own mount and net namespace):
    # the supervisor's notify socket directory is bound in on its own path.
    send = ("import os, socket\\n"
            "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\\n"
            "p = os.environ['NOTIFY_SOCKET']\\n"
            "s.sendto(b'READY=1', '\\\\0' + p[1:] if p[0] == '@' else p)\\n"
            "import time; time.sleep(300)\\n")
    a = ainit_run(f"""
version: 1
groups:
  n:
    user: root
    network: none
    agents:
      ready: {{command: [python3, -c, "{send}"], health: {{notify: true, start_period: 20s}}}}
""", extra_args=("--sandbox",))
    st = a.wait_state("ready", "healthy", timeout=15)
    assert st["health"] == "healthy"


def test_orphans_inside_are_reaped_by_the_holder_and_counted(ainit_run):
    # Inside a pid namespace an orphan lands on the group's holder (its
    # PID 1), not on ainit; status still counts it.
    a = ainit_run("""
version: 1
groups:
  o:
    user: root
    network: none
    agents:
      parent: {command: [sh, -c, "while :; do (sleep 0.05 &); sleep 0.2; done"]}
""", extra_args=("--sandbox",))
    wait_for(lambda: a.request({"cmd": "status"}).get("orphans_reaped", 0) >= 3,
             what="orphans reaped inside the sandbox")


def test_stop_timeout_kills_what_the_agent_left_in_its_leaf(ainit_run, tmp_path):
    # The agent ignores SIGTERM and has started a helper in a session of its
    # own (out of reach of a process-group kill). At the stop timeout the
    # agent's cgroup leaf gets cgroup.kill: the helper dies too.
    out = tmp_path / "out"
    out.mkdir()
    (out / "helper.sh").write_text("trap '' TERM\nwhile :; do date +%s%N > /mnt/beat; sleep 0.05; done\n")
    (out / "agent.sh").write_text("setsid sh /mnt/helper.sh &\ntrap '' TERM\nwhile :; do sleep 1; done\n")
    a = ainit_run(f"""
version: 1
groups:
  k:
    user: root
    network: none
    volumes: ['{out}:/mnt']
    agents:
      stubborn:
        command: [sh, /mnt/agent.sh]
        stop: {{timeout: 300ms}}
""", extra_args=("--sandbox",))
    wait_for(lambda: (out / "beat").exists(), what="the helper's heartbeat")
    r = a.ctl("stop", "stubborn")
    assert r.returncode == 0, r.stderr
    a.wait_state("stubborn", "exited", "failed", timeout=10)
    time.sleep(0.3)
    last = (out / "beat").read_text()
    time.sleep(0.5)
    assert (out / "beat").read_text() == last, "the helper outlived its agent"
