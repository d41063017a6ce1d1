"""Appliance tier: two guests, MainPC and PC-2, joined by a QEMU socket
netdev on 127.0.0.1 (never a host interface). Each configures its eth0 from
appliance.network.interfaces and writes appliance.hosts to /etc/hosts; PC-2's
agent waits for mainpc:registry (a remote dependency, asked over the link
from MainPC's metrics listener) and starts once MainPC has it running."""

import json
import re
import socket
import textwrap
import time

from conftest import Guest, build_image

MAINPC = textwrap.dedent("""\
    version: 1
    appliance:
      hostname: mainpc
      network: {interfaces: [{name: eth0, address: 192.168.50.10/24}]}
      metrics: {listen: "0.0.0.0:9400"}
    defaults: {user: root}
    groups:
      core:
        network: host
        agents:
          registry: {command: [sh, -c, "exec sleep 100000"]}
    """)

PC2 = textwrap.dedent("""\
    version: 1
    appliance:
      hostname: pc2
      network: {interfaces: [{name: eth0, address: 192.168.50.11/24}]}
      hosts: {mainpc: 192.168.50.10}
    defaults: {user: root}
    groups:
      app:
        network: host
        agents:
          waiter:
            depends_on: ["mainpc:registry"]
            command: [sh, -c, "echo pair: $(grep mainpc /etc/hosts); exec sleep 100000"]
    """)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def test_pair_remote_dependency(tmp_path):
    imgs = {}
    for name, text in (("mainpc", MAINPC), ("pc2", PC2)):
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(text)
        imgs[name] = build_image(str(cfg), str(tmp_path / f"img-{name}"))
        (tmp_path / f"run-{name}").mkdir()
    port = free_port()
    one_cpu = ("--smp", "1")  # two TCG guests on a 2-core machine
    a = Guest(imgs["mainpc"], tmp_path / "run-mainpc",
              extra=(*one_cpu, "--net-listen", f"127.0.0.1:{port}", "--mac", "52:54:00:00:50:10"))
    b = None
    try:
        b = Guest(imgs["pc2"], tmp_path / "run-pc2",
                  extra=(*one_cpu, "--net-connect", f"127.0.0.1:{port}", "--mac", "52:54:00:00:50:11"))
        doc = b.wait_status(
            lambda d: any(x["name"] == "waiter" and x["pid"] for x in d.get("agents", [])),
            "PC-2's waiter to start after mainpc:registry", timeout=180)
        assert re.search(r"eth0: up, 192\.168\.50\.11/24", b.console_text()), b.console_text()
        assert re.search(r"eth0: up, 192\.168\.50\.10/24", a.console_text()), a.console_text()
        # the dependency was asked of MainPC over the link
        assert "mainpc:registry: remote agent is healthy (192.168.50.10:9400)" in b.console_text()
        # its first line may still be on its way to the log ring
        end = time.monotonic() + 60
        while True:
            r = b.ctl("--json", "logs", "waiter", "-n", "5", timeout=30)
            assert r.returncode == 0, r.stderr
            if re.search(r"pair: 192\.168\.50\.10\s+mainpc", json.loads(r.stdout)["text"]):
                break
            assert time.monotonic() < end, f"waiter never logged the hosts entry: {r.stdout}"
            time.sleep(0.3)
        for g in (b, a):
            assert g.ctl("poweroff", timeout=30).returncode == 0
            assert g.wait_exit(60) == 0, g.console_text()
    finally:
        if b:
            b.kill()
        a.kill()
