"""The MainPC + PC-2 pair with the real configs and stub agents (build/mainpc,
build/pc2 from `make mainpc pc2`): two guests joined by a QEMU socket netdev
on 127.0.0.1 (never a host interface), each with the address of its config's
appliance.network.interfaces. PC-2 boots first, alone: its redis comes up
and every other group waits for mainpc:ServiceRegistry, which PC-2's ainit
asks MainPC's metrics listener over the link (192.168.50.10:9400). Then
MainPC boots; once its ServiceRegistry is healthy PC-2's agents come up, and
both reach all-healthy (61 + 27 agents) and power off cleanly.

No timed assertions: the waits are generous timeouts; that PC-2 waited is
seen in its status before MainPC even starts."""

import os
import socket
import time

import pytest
import yaml

from conftest import BOOT_TIMEOUT, BUILD, TOP, Guest, need

HEALTHY_TIMEOUT = max(BOOT_TIMEOUT, 400)  # two TCG guests on 2 cores
REMOTE = "mainpc:ServiceRegistry"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def pc2_agents():
    with open(os.path.join(TOP, "configs", "pc2.yaml")) as f:
        doc = yaml.safe_load(f)
    return {a: g for g, body in doc["groups"].items() for a in body["agents"]}


def not_healthy(doc):
    return [f"{a['name']}: {a['state']}"
            f"{' waiting for ' + a['waiting_for'] if a.get('waiting_for') else ''}"
            f"{' (' + a['reason'] + ')' if a.get('reason') else ''}"
            for a in doc.get("agents") or [] if a["state"] != "healthy"]


def wait_healthy(guest, what):
    deadline = time.monotonic() + HEALTHY_TIMEOUT
    doc = {}
    while time.monotonic() < deadline:
        assert guest.proc.poll() is None, \
            f"{what}: QEMU exited {guest.proc.returncode}:\n{guest.console_text()[-4000:]}"
        _, doc = guest.status(timeout=HEALTHY_TIMEOUT)
        if doc.get("agents") and not not_healthy(doc):
            return doc
        time.sleep(0.5)
    pytest.fail(f"{what}: not all healthy after {HEALTHY_TIMEOUT} s:\n  " +
                "\n  ".join(not_healthy(doc)) + "\n" + guest.console_text()[-4000:])


def test_pair(tmp_path):
    for name in ("mainpc", "pc2"):
        need(os.path.join(BUILD, name, "initramfs"), f"{name} stub image (make {name})")
        (tmp_path / name).mkdir()
    port = free_port()
    one_cpu = ("--smp", "1")
    pc2 = Guest(os.path.join(BUILD, "pc2"), tmp_path / "pc2",
                extra=(*one_cpu, "--net-listen", f"127.0.0.1:{port}", "--mac", "52:54:00:00:50:11"))
    mainpc = None
    try:
        groups = pc2_agents()
        # Alone: infra (its own redis) healthy, everything else waiting for
        # MainPC's ServiceRegistry, directly or through an agent that is.
        doc = pc2.wait_status(
            lambda d: any(a["name"] == "redis" and a["state"] == "healthy"
                          for a in d.get("agents", [])),
            "PC-2's redis healthy", timeout=HEALTHY_TIMEOUT)
        time.sleep(2)  # let the remote probe fail a few times
        _, doc = pc2.status()
        assert {a["name"] for a in doc["agents"]} == set(groups)
        for a in doc["agents"]:
            if groups[a["name"]] == "infra":
                assert a["state"] == "healthy", a
                continue
            assert a["state"] == "waiting" and a["pid"] == 0, a
        waiting_remote = [a["name"] for a in doc["agents"] if a.get("waiting_for") == REMOTE]
        assert "MemoryOrchestratorService" in waiting_remote, doc["agents"]
        h = pc2.ctl("health", "MemoryOrchestratorService")
        assert f"remote dependency {REMOTE} (192.168.50.10:9400): NOT healthy" in h.stdout, h.stdout

        mainpc = Guest(os.path.join(BUILD, "mainpc"), tmp_path / "mainpc",
                       extra=(*one_cpu, "--net-connect", f"127.0.0.1:{port}",
                              "--mac", "52:54:00:00:50:10"))
        mdoc = wait_healthy(mainpc, "MainPC")
        pdoc = wait_healthy(pc2, "PC-2")
        assert len(mdoc["agents"]) == 61 and len(pdoc["agents"]) == len(groups)
        assert "eth0: up, 192.168.50.10/24" in mainpc.console_text()
        assert "eth0: up, 192.168.50.11/24" in pc2.console_text()
        # PC-2 got MainPC's registry over the link, then started its agents
        # (no restarts: they never ran before it).
        assert f"{REMOTE}: remote agent is healthy (192.168.50.10:9400)" in pc2.console_text()
        h = pc2.ctl("health", "MemoryOrchestratorService")
        assert f"remote dependency {REMOTE} (192.168.50.10:9400): healthy" in h.stdout, h.stdout
        assert all(a["restarts"] == 0 for a in pdoc["agents"]), pdoc["agents"]
        print(pc2.ctl("status").stdout)

        for g in (pc2, mainpc):
            assert g.ctl("poweroff", timeout=60).returncode == 0
        for g in (pc2, mainpc):
            assert g.wait_exit(120) == 0, g.console_text()[-4000:]
            ours = [l for l in g.console_lines() if l.startswith("ainit: ")]
            assert ours and ours[-1] == "ainit: poweroff", g.console_text()[-4000:]
            assert "sending SIGKILL" not in g.console_text(), g.console_text()[-4000:]
    finally:
        if mainpc:
            mainpc.kill()
        pc2.kill()
