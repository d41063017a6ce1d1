"""The MainPC appliance: configs/mainpc.yaml with every Python agent replaced
by stub-agent (ServiceRegistry by registry) through the override that
configs/stub-override.py --vm writes, real redis-server and nats-server,
booted as PID 1 in QEMU (build/mainpc, made by `make mainpc`).

One boot: every one of the 61 agents healthy, the dependency order in the
status timings (guest clock), `ctl health` of a zmq-checked agent, `ctl logs`
of a stub, `ctl status` from the host, then a clean poweroff in which redis
and every stub stop on SIGTERM. No timed assertions: the boot wait is a
generous timeout, the order is checked on the guest's own timestamps.
"""

import json
import os

import pytest
import yaml

from conftest import AINIT, BOOT_TIMEOUT, BUILD, TOP, Guest, need

IMAGE = os.path.join(BUILD, "mainpc")
# 61 agents under TCG on a loaded 2-core machine: more than the demo's wait.
HEALTHY_TIMEOUT = max(BOOT_TIMEOUT, 300)


def config():
    """The merged config (the real one and the stub override the image holds)."""
    with open(os.path.join(TOP, "configs", "mainpc.yaml")) as f:
        doc = yaml.safe_load(f)
    over = os.path.join(BUILD, "stub-mainpc.yaml")
    need(over, "stub override (make mainpc)")
    with open(over) as f:
        ov = yaml.safe_load(f)
    for g, body in ov["groups"].items():
        for a, agent in (body.get("agents") or {}).items():
            doc["groups"][g]["agents"][a].update(agent)
    return doc


def timings(doc):
    """Per agent (start, healthy) in seconds of the guest clock: the status's
    clock_ms minus the agent's uptime (start) and time in its state (healthy)."""
    now = doc["clock_ms"]
    return {a["name"]: ((now - a["uptime_ms"]) / 1000, (now - a["since_ms"]) / 1000)
            for a in doc["agents"]}


def not_healthy(doc):
    return [f"{a['name']} ({a['group']}): {a['state']}, health {a['health']}"
            f"{', waiting for ' + a['waiting_for'] if a.get('waiting_for') else ''}"
            f"{', ' + a['reason'] if a.get('reason') else ''}"
            for a in doc.get("agents") or [] if a["state"] != "healthy"]


@pytest.fixture(scope="module")
def guest(tmp_path_factory):
    need(os.path.join(IMAGE, "initramfs"), "MainPC stub image (make mainpc)")
    # eth0 (appliance.network.interfaces) must exist, or boot waits for it:
    # user-mode networking with restrict=on, no way out of the guest.
    g = Guest(IMAGE, tmp_path_factory.mktemp("mainpc"), extra=("--user-net",))
    yield g
    g.kill()


@pytest.fixture(scope="module")
def healthy(guest):
    """The first status in which every agent is healthy."""
    import time
    deadline = time.monotonic() + HEALTHY_TIMEOUT
    doc = {}
    while time.monotonic() < deadline:
        assert guest.proc.poll() is None, \
            f"QEMU exited {guest.proc.returncode} during boot:\n{guest.console_text()}"
        _, doc = guest.status(timeout=HEALTHY_TIMEOUT)
        if doc.get("agents") and not not_healthy(doc):
            return doc
        time.sleep(0.5)
    pytest.fail("not all agents healthy after %d s; not healthy:\n  %s\n%s" % (
        HEALTHY_TIMEOUT, "\n  ".join(not_healthy(doc)), guest.console_text()[-4000:]))


def test_every_agent_healthy(guest, healthy):
    cfg = config()
    want = {a for g in cfg["groups"].values() for a in g["agents"]}
    got = {a["name"] for a in healthy["agents"]}
    assert got == want, (want - got, got - want)
    assert len(got) == 61  # the 60 legacy agents and GPUProbe
    assert healthy["pid1"] is True and healthy["degraded"] is None
    assert healthy["hostname"] == "mainpc"
    assert "eth0: up, 192.168.50.10/24" in guest.console_text(), guest.console_text()
    for a in healthy["agents"]:
        assert a["restarts"] == 0, a
        assert a["pid"] > 0, a
    # The stubs really are the stubs, and the infra group the real servers.
    r, _ = guest.status()
    assert r.returncode == 0, r.stdout + r.stderr
    table = guest.ctl("status")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["GROUP", "AGENT", "STATE", "HEALTH"]
    rows = {l.split()[1]: l.split() for l in lines[1:] if l.strip()}
    assert rows["redis"][0] == "infra" and rows["redis"][2] == "healthy"
    assert "6379" in rows["redis"]
    assert "7200/8200" in rows["ServiceRegistry"]


def test_dependency_order(healthy):
    """infra before core-services before memory-system and gpu-infra, and
    every agent started only after each agent it depends on was healthy
    (groups as dependencies mean all of their agents)."""
    cfg = config()
    t = timings(healthy)
    group_of = {a["name"]: a["group"] for a in healthy["agents"]}
    members = {}
    for a, g in group_of.items():
        members.setdefault(g, []).append(a)

    def all_healthy(g):
        return max(t[a][1] for a in members[g])

    def first_start(g):
        return min(t[a][0] for a in members[g])

    assert all_healthy("infra") <= first_start("core-services"), t
    for g in ("memory-system", "gpu-infra"):
        assert all_healthy("core-services") <= first_start(g), (g, t)
    checked = 0
    for gname, g in cfg["groups"].items():
        gdeps = g.get("depends_on") or []
        for aname, agent in g["agents"].items():
            for d in gdeps + (agent.get("depends_on") or []):
                deps = members.get(d, [d])
                for dep in deps:
                    assert t[dep][1] <= t[aname][0], \
                        f"{aname} started at {t[aname][0]:.3f} s before {dep} was healthy at {t[dep][1]:.3f} s"
                    checked += 1
    assert checked > 100, checked
    order = sorted(members, key=first_start)
    print("groups by first start (guest s):",
          ", ".join(f"{g} {first_start(g):.2f}->{all_healthy(g):.2f}" for g in order))


def test_health_of_a_zmq_agent(guest, healthy):
    r = guest.ctl("health", "SystemDigitalTwin")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("SystemDigitalTwin: healthy, health healthy"), r.stdout
    assert "check: zmq" in r.stdout and "8220" in r.stdout, r.stdout
    r = guest.ctl("health", "--json", "SystemDigitalTwin")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    probe = doc["probe"]
    assert probe["kind"] == "zmq", probe
    assert "8220" in str(probe["target"]), probe


def test_logs_of_a_stub(guest, healthy):
    r = guest.ctl("logs", "SystemDigitalTwin", "-n", "50")
    assert r.returncode == 0, r.stderr
    assert "SystemDigitalTwin: stub-agent pid" in r.stdout, r.stdout
    assert "group core-services port 7220 health 8220" in r.stdout, r.stdout
    assert "SystemDigitalTwin: ready" in r.stdout, r.stdout
    r = guest.ctl("logs", "redis", "-n", "50")
    assert r.returncode == 0, r.stderr
    assert "Ready to accept connections" in r.stdout, r.stdout


def test_clean_poweroff(guest, healthy):
    r = guest.ctl("poweroff")
    assert r.returncode == 0, r.stderr
    rc = guest.wait_exit(timeout=120)
    lines = guest.console_lines()
    ours = [l for l in lines if l.startswith("ainit: ")]
    assert rc == 0, f"QEMU exited {rc}:\n{guest.console_text()}"
    assert ours and ours[-1] == "ainit: poweroff", guest.console_text()
    text = "\n".join(lines)
    # Everything stopped on SIGTERM, nothing had to be killed; redis saved
    # its RDB to the redis_data volume (owned by user agent) and exited 0.
    assert "redis: exited with status 0" in text, text[-4000:]
    assert "nats: exited with status 0" in text, text[-4000:]  # stop.signal SIGINT
    assert "sending SIGKILL" not in text, text[-4000:]
    for name in ("ServiceRegistry", "SystemDigitalTwin", "EmpathyAgent"):
        assert f"{name}: exited with status 0" in text, text[-4000:]
