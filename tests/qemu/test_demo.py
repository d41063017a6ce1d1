"""Appliance tier: the demo image boots with ainit as PID 1, is seen and
driven from the host over the virtio-serial control channel, and powers off
cleanly; a broken config leaves a degraded init that still answers ctl."""

import os
import re
import time

import pytest

from conftest import BUILD, RUNNING, Guest, build_image, need

DEMO_AGENTS = {"clock": "infra", "heartbeat": "infra", "worker": "workers", "crasher": "workers"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    img = os.path.join(BUILD, "demo")
    need(os.path.join(img, "initramfs"), "demo image (make image)")
    g = Guest(img, tmp_path_factory.mktemp("demo"))
    yield g
    g.kill()


def by_name(doc):
    return {a["name"]: a for a in doc.get("agents", [])}


def test_demo_agents_seen_from_host(demo):
    doc = demo.wait_status(
        lambda d: set(by_name(d)) == set(DEMO_AGENTS) and all(
            by_name(d)[n]["state"] in RUNNING for n in ("clock", "heartbeat", "worker")),
        "the demo agents to run")
    up = time.monotonic() - demo.t0
    print(f"agents running {up:.1f} s after QEMU started")
    agents = by_name(doc)
    assert set(agents) == set(DEMO_AGENTS)
    for name, group in DEMO_AGENTS.items():
        a = agents[name]
        assert a["group"] == group, a
        for key in ("state", "pid", "restarts", "health"):
            assert key in a, f"{name}: status lacks {key}: {a}"
    for name in ("clock", "heartbeat", "worker"):
        a = agents[name]
        assert a["state"] in RUNNING, a
        assert isinstance(a["pid"], int) and a["pid"] > 1, a
        assert a["restarts"] == 0, a
    assert not doc.get("degraded"), doc


def test_demo_crasher_is_restarted(demo):
    # exits 1 every ~3 s, restarted after 1 s: two restarts within ~12 s
    doc = demo.wait_status(lambda d: by_name(d).get("crasher", {}).get("restarts", 0) >= 2,
                           "the crasher to be restarted twice", timeout=60)
    c = by_name(doc)["crasher"]
    assert c["state"] in RUNNING | {"backoff"}, c
    # the steady agents did not move meanwhile
    for name in ("clock", "heartbeat", "worker"):
        assert by_name(doc)[name]["restarts"] == 0, by_name(doc)[name]


def test_demo_orphans_reaped_in_their_group(demo):
    # The worker runs in its group's sandbox and orphans a process every
    # second; the group's holder (PID 1 of the group's pid namespace) reaps
    # them. The worker reports the zombies it sees; its log travels over the
    # control channel.
    import json
    import re

    def rounds():
        r = demo.ctl("--json", "logs", "worker", "-n", "50", timeout=30)
        if r.returncode != 0:
            return []
        return [(int(m.group(1)), int(m.group(2))) for m in
                re.finditer(r"worker: round (\d+) zombies (\d+)", json.loads(r.stdout)["text"])]
    end = time.monotonic() + 90
    seen = []
    while time.monotonic() < end:
        seen = rounds()
        if seen and seen[-1][0] >= 5:
            break
        time.sleep(1)
    assert seen and seen[-1][0] >= 5, f"the worker never reported 5 rounds: {seen}"
    # a zombie can exist for the instant between exit and reaping; never more
    assert max(z for _, z in seen[-4:]) <= 1, seen
    assert seen[-1][1] == 0 or seen[-2][1] == 0, seen


def test_demo_many_clients_each_get_their_own_answer(demo):
    # 200 clients one after another, alternating two kinds of request: each
    # must get an answer, and the answer to its own request (never one left
    # over for an earlier client: the virtio-serial channel has no notion of
    # connections).
    import json
    import socket
    t0 = time.monotonic()
    for i in range(200):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(demo.sock)
        cmd = "status" if i % 2 else "ping"
        s.sendall(json.dumps({"cmd": cmd}).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            d = s.recv(65536)
            assert d, f"request {i} ({cmd}): connection closed without an answer"
            buf += d
        s.close()
        doc = json.loads(buf)
        assert ("agents" in doc) == (cmd == "status"), f"request {i} ({cmd}) got {doc}"
    print(f"200 ctl round trips in {time.monotonic() - t0:.2f} s")


def test_demo_status_table(demo):
    r = demo.ctl("status")
    assert r.returncode == 0, r.stderr
    head = r.stdout.splitlines()[0]
    for col in ("GROUP", "AGENT", "STATE", "PID", "UPTIME", "RESTARTS"):
        assert col in head, head
    for name in DEMO_AGENTS:
        assert re.search(rf"\b{name}\b", r.stdout), r.stdout


def test_demo_clean_poweroff(demo):
    r = demo.ctl("poweroff", timeout=30)
    assert r.returncode == 0, r.stderr
    rc = demo.wait_exit(60)
    lines = demo.console_lines()
    assert rc == 0, f"QEMU exit {rc}\n" + "\n".join(lines[-30:])
    ours = [l for l in lines if l.startswith("ainit: ")]
    assert ours and ours[-1] == "ainit: poweroff", lines[-10:]
    # nothing after it but the kernel's own power-down line
    after = lines[lines.index(ours[-1]) + 1:]
    assert all("reboot: Power down" in l for l in after), after


BROKEN = {
    # YAML syntax: the flow mapping is never closed
    "syntax": "version: 1\ngroups:\n  g:\n    agents:\n      a: {command: [sh, -c, \"sleep 1\"]\n",
    # valid YAML, a value the schema does not know
    "schema": "version: 1\ngroups:\n  g:\n    agents:\n"
              "      a: {command: [sh, -c, \"sleep 1\"], restart: {policy: sometimes}}\n",
}


# The schema case also boots on microvm (virtio-mmio control channel) and
# ends with a reboot (QEMU exits: -no-reboot), so that machine type and that
# path stay tested without boots of their own.
@pytest.mark.parametrize("kind,machine,final", [("syntax", "q35", "poweroff"),
                                                ("schema", "microvm", "reboot")])
def test_broken_config_degraded_but_answers(tmp_path, kind, machine, final):
    cfg = tmp_path / "broken.yaml"
    cfg.write_text(BROKEN[kind])
    img = build_image(str(cfg), str(tmp_path / "img"))
    g = Guest(img, tmp_path, machine=machine)
    try:
        _, doc = g.status()
        assert doc.get("degraded"), f"status does not say degraded: {doc}"
        assert not doc.get("agents"), doc
        # the console tells why, with the file position
        text = g.console_text()
        assert re.search(r"/etc/ainit/appliance\.yaml:\d+:\d+: error", text), text
        r = g.ctl(final, timeout=30)
        assert r.returncode == 0, r.stderr
        rc = g.wait_exit(60)
        assert rc == 0, g.console_text()
        ours = [l for l in g.console_lines() if l.startswith("ainit: ")]
        assert ours and ours[-1] == f"ainit: {final}", ours
    finally:
        g.kill()


ORPHANER = """\
version: 1
defaults: {user: root}
groups:
  g:
    agents:
      orphaner:
        # leaves an orphan every 0.3 s: a "sleep" whose parent subshell is gone
        command: [sh, -c, "while :; do (sleep 0.1 &); sleep 0.3; done"]
"""


def test_pid1_reaps_orphans(tmp_path):
    # Without sandboxes (ainit.sandbox=0 on the kernel command line) an
    # agent's orphans are re-parented to PID 1 itself, which must reap them
    # (in a sandbox the group's holder reaps them inside its pid namespace).
    cfg = tmp_path / "orphans.yaml"
    cfg.write_text(ORPHANER)
    img = build_image(str(cfg), str(tmp_path / "img"))
    g = Guest(img, tmp_path, extra=("--append", "ainit.sandbox=0"))
    try:
        doc = g.wait_status(lambda d: d.get("orphans_reaped", 0) >= 3,
                            "PID 1 to reap the orphans", timeout=90)
        assert doc["pid1"] is True, doc
        assert by_name(doc)["orphaner"]["restarts"] == 0, doc
        assert g.ctl("poweroff", timeout=30).returncode == 0
        assert g.wait_exit(60) == 0, g.console_text()
    finally:
        g.kill()
