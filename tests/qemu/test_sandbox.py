"""Appliance tier for the sandbox: full cgroup v2 in the guest, ainit as PID 1
sandboxing every group. A fork bomb is held by pids.max, a memory hog is
OOM-killed inside its group only while the other groups stay up, and a
device that is not granted cannot be opened even after mknod by a root agent
with CAP_MKNOD. Results are read with `ainit ctl logs` and `status`."""

import os
import re
import time

import pytest

from conftest import RUNNING, Guest, build_image

CONFIG = """\
version: 1
appliance:
  hostname: sbxtest
groups:
  bomb:
    user: root
    resources: {pids: 32}
    agents:
      forker:
        # the bomb forks until the kernel refuses (ash then exits 2); the
        # count afterwards uses builtins only: no fork left to spend
        command: [sh, -c, "(while :; do sleep 600 & done) 2>/dev/null; n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo BOMB procs=$n"]
        restart: "no"
  hog:
    user: root
    resources: {memory: 32MiB}
    agents:
      eater:
        command: [sh, -c, "echo HOG start; x=$(head -c 300000000 /dev/zero | tr '\\\\0' a); echo HOG survived $x | head -c 20"]
        restart: "no"
  calm:
    user: root
    agents:
      steady: {command: [sh, -c, "while :; do sleep 1; done"]}
  dev:
    user: root
    capabilities: [CAP_MKNOD]
    agents:
      prober:
        command: [sh, -c, "mknod /dev/kmsg2 c 1 11 && echo DEV mknod-ok; if head -c1 /dev/kmsg2 >/dev/null 2>&1; then echo DEV opened; else echo DEV denied; fi; if echo x > /dev/null; then echo DEV null-ok; fi; sleep 600"]
        restart: "no"
"""


@pytest.fixture(scope="module")
def guest(tmp_path_factory):
    d = tmp_path_factory.mktemp("sbx")
    cfg = d / "sandbox.yaml"
    cfg.write_text(CONFIG)
    img = build_image(str(cfg), str(d / "image"))
    (d / "run").mkdir()
    g = Guest(img, d / "run")
    doc = g.wait_status(lambda d: "agents" in d or d.get("degraded"), "the config to load")
    assert not doc.get("degraded"), doc
    yield g
    g.kill()


def by_name(doc):
    return {a["name"]: a for a in doc.get("agents", [])}


def logs(g, agent):
    r = g.ctl("logs", agent, "-n", "50")
    return r.stdout + r.stderr


def wait_log(g, agent, pattern, timeout=90):
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = logs(g, agent)
        m = re.search(pattern, text)
        if m:
            return m
        time.sleep(0.5)
    pytest.fail(f"{agent}: no /{pattern}/ in its log:\n{text}\n{g.console_text()[-4000:]}")


def test_fork_bomb_held_by_pids_max(guest):
    m = wait_log(guest, "forker", r"BOMB procs=(\d+)")
    # pids.max = 32 counts every task of the group, the holder included;
    # the bomb did fill it (the sleeps are still there)
    assert 20 <= int(m.group(1)) <= 32, m.group(0)
    doc = guest.wait_status(lambda d: by_name(d).get("steady", {}).get("state") in RUNNING,
                            "steady to run")
    assert by_name(doc)["steady"]["restarts"] == 0
    # the appliance still answers and starts processes elsewhere
    assert guest.ctl("status").returncode in (0, 1)


def test_memory_hog_killed_in_its_group_only(guest):
    wait_log(guest, "eater", r"HOG start")
    doc = guest.wait_status(
        lambda d: by_name(d).get("eater", {}).get("state") in ("exited", "failed"),
        "the hog to be killed", timeout=120)
    eater = by_name(doc)["eater"]
    assert "survived" not in logs(guest, "eater")
    assert "SIGKILL" in str(eater.get("reason", "")) + str(eater), eater
    steady = by_name(doc)["steady"]
    assert steady["state"] in RUNNING and steady["restarts"] == 0, steady


def test_device_not_granted_cannot_be_opened_after_mknod(guest):
    wait_log(guest, "prober", r"DEV null-ok")
    text = logs(guest, "prober")
    assert "DEV mknod-ok" in text, text
    assert "DEV denied" in text and "DEV opened" not in text, text
