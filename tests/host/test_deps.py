"""Dependencies gate on health, not on start: a slow agent holds its
dependants in `waiting` (and status says for whom); groups start in
parallel once their dependencies are healthy; remote HOST:AGENT
dependencies wait for another ainit, and a remote host that is down or hung
shows as such. The full MainPC config with stub agents and real Redis/NATS
reaches all-healthy in its planned group order."""
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import AINIT, BUILD, ROOT, free_port, wait_for

STUB = str(BUILD / "agents" / "stub-agent")
FAST = "{interval: 1s, timeout: 400ms, retries: 2, start_interval: 100ms}"


@pytest.fixture(autouse=True)
def need_agents():
    if not os.path.exists(STUB):
        pytest.skip(f"{STUB} not built (make agents)")


def test_order_follows_health_not_start(ainit_run):
    p = [free_port() for _ in range(6)]
    a = ainit_run(f"""
version: 1
defaults: {{user: root, health: {FAST}}}
groups:
  base:
    agents:
      slow: {{command: [{STUB}, --start-delay, 1500ms], port: {p[0]}, health_port: {p[1]},
             health: {{zmq: {p[1]}, start_period: 10s, timeout: 3s, interval: 5s}}}}
  upper:
    depends_on: [base]
    agents:
      a1: {{command: [{STUB}], port: {p[2]}, health_port: {p[3]}, health: {{zmq: {p[3]}}}}}
      a2: {{command: [{STUB}], port: {p[4]}, health_port: {p[5]}, health: {{zmq: {p[5]}}}}}
      top: {{command: [sleep, "300"], depends_on: [a1, a2]}}
""")
    # slow runs (its process started) but is not healthy: dependants wait for it
    s = a.wait_state("slow", "starting")
    st = a.status()
    assert st["a1"]["state"] == "waiting" and st["a1"]["waiting_for"] == "slow"
    assert st["top"]["state"] == "waiting"
    assert "waiting for slow" in a.ctl("status").stdout
    a.wait_state("top", "healthy", timeout=15)
    st = a.status()
    # slow ran once (a restart would reset its uptime, and the order below is
    # measured on uptimes): its checks have a generous timeout, since a check
    # that times out on a loaded machine would restart it
    assert st["slow"]["restarts"] == 0, st["slow"]
    # a1 and a2 started only after slow passed its check (≥ 1.5 s after slow)
    for n in ("a1", "a2"):
        assert st["slow"]["uptime_ms"] - st[n]["uptime_ms"] >= 1400, (st["slow"], st[n])
    # a1 and a2 started together (parallel), top after both
    assert abs(st["a1"]["uptime_ms"] - st["a2"]["uptime_ms"]) < 500
    assert st["top"]["uptime_ms"] <= min(st["a1"]["uptime_ms"], st["a2"]["uptime_ms"])
    assert a.stop() == 0


def test_crashing_dependency_keeps_dependants_waiting(ainit_run):
    p = [free_port() for _ in range(2)]
    a = ainit_run(f"""
version: 1
defaults: {{user: root, health: {FAST}}}
groups:
  g:
    agents:
      flaky: {{command: [{STUB}, --start-delay, 200ms, --crash-after, 100ms, --exit-code, 7],
              port: {p[0]}, health_port: {p[1]},
              health: {{zmq: {p[1]}, start_period: 10s}}, restart: {{delay: 100ms, burst: 3, within: 60s}}}}
      dep: {{command: [sleep, "300"], depends_on: [flaky]}}
""")
    s = a.wait_state("flaky", "failed", timeout=15)
    assert "restarted 3 times" in s["reason"]
    d = a.agent("dep")
    assert d["state"] == "waiting" and d["waiting_for"] == "flaky" and d["pid"] == 0
    assert a.ctl("status").returncode != 0
    assert a.stop() == 0


def test_remote_dependency(ainit_run, tmp_path):
    mp, p1, h1 = free_port(), free_port(), free_port()
    main_cfg = f"""
version: 1
appliance: {{hostname: mainpc, metrics: {{listen: "127.0.0.1:{mp}"}}}}
defaults: {{user: root, health: {FAST}}}
groups:
  core:
    agents:
      ServiceRegistry: {{command: [{BUILD}/agents/registry], port: {p1}, health_port: {h1}, health: {{zmq: {h1}}}}}
"""
    pc2_dir = tmp_path / "pc2"
    pc2_dir.mkdir()
    from conftest import Ainit
    pc2 = Ainit(pc2_dir, f"""
version: 1
appliance: {{hostname: pc2, hosts: {{mainpc: "127.0.0.1:{mp}"}}}}
defaults: {{user: root}}
groups:
  g:
    depends_on: ["mainpc:ServiceRegistry"]
    agents:
      worker: {{command: [sleep, "300"]}}
""")
    try:
        # MainPC is not up: PC-2 waits and says why
        # ("not probed yet" until the first remote probe has answered)
        w = wait_for(lambda: (x := pc2.agent("worker")).get("waiting_reason") not in (None, "", "not probed yet")
                     and x, what="a reason for waiting from a remote probe")
        assert w["state"] == "waiting" and w["waiting_for"] == "mainpc:ServiceRegistry"
        assert "Connection refused" in w["waiting_reason"], w
        out = pc2.ctl("health", "worker").stdout
        assert "remote dependency mainpc:ServiceRegistry" in out and "NOT healthy" in out
        main = ainit_run(main_cfg)
        main.wait_state("ServiceRegistry", "healthy")
        pc2.wait_state("worker", "healthy", timeout=15)
        r = pc2.request({"cmd": "health", "target": "worker"})
        assert r["probe"]["remote"][0]["healthy"] is True
        assert main.stop() == 0
        assert pc2.stop() == 0
    finally:
        if pc2.proc.poll() is None:
            pc2.proc.kill()
            pc2.proc.wait()


def test_remote_host_hung(ainit_run):
    # a "host" that accepts connections and never answers (a hung ainit)
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    try:
        a = ainit_run(f"""
version: 1
appliance: {{hosts: {{mainpc: "127.0.0.1:{hung.getsockname()[1]}"}}}}
defaults: {{user: root}}
groups:
  g:
    agents:
      w: {{command: [sleep, "300"], depends_on: ["mainpc:ServiceRegistry"]}}
      local: {{command: [sleep, "300"]}}
      nohost: {{command: [sleep, "300"], depends_on: ["elsewhere:X"]}}
""")
        a.wait_state("local", "healthy")
        w = wait_for(lambda: "no answer within 3s" in ((x := a.agent("w")).get("waiting_reason") or "") and x,
                     timeout=10, what="a hung host reported")
        assert w["state"] == "waiting"
        n = a.agent("nohost")
        assert n["state"] == "waiting" and "not in appliance.hosts" in (n["waiting_reason"] or "")
        assert a.request({"cmd": "ping"})["ok"]  # the supervisor carries on
        assert a.stop() == 0
    finally:
        hung.close()


def netns_ok():
    if not shutil.which("unshare") or not shutil.which("ip"):
        return "unshare/ip missing"
    r = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    return None if r.returncode == 0 else "cannot make a network namespace: " + r.stderr.decode()


def test_full_mainpc_with_stubs_all_healthy_in_order(tmp_path):
    why = netns_ok()
    if why:
        pytest.skip(why)
    for prog in ("redis-server", "nats-server"):
        if not shutil.which(prog):
            pytest.skip(f"{prog} not installed (mk/deps.sh)")
    ov = tmp_path / "stub.yaml"
    with open(ov, "w") as f:
        subprocess.run(["/usr/bin/python3", str(ROOT / "configs" / "stub-override.py"),
                        str(ROOT / "configs" / "mainpc.yaml"), "--agents", str(BUILD / "agents"),
                        "--host", "--data-dir", str(tmp_path / "data")], stdout=f, check=True)
    state = tmp_path / "state"
    sock = state / "ctl.sock"
    log = open(tmp_path / "ainit.log", "wb")
    # its own network namespace: the config's fixed ports (6379, 7200, ...)
    # cannot collide with anything else on this host
    proc = subprocess.Popen(["unshare", "-n", "sh", "-c",
                             'ip link set lo up && exec "$0" "$@"', AINIT, "run",
                             "--config", str(ROOT / "configs" / "mainpc.yaml"), "--config", str(ov),
                             "--state-dir", str(state)], stdout=log, stderr=subprocess.STDOUT)
    try:
        import json

        def status():
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(str(sock))
                s.sendall(b'{"cmd":"status"}\n')
                buf = b""
                while not buf.endswith(b"\n"):
                    c = s.recv(1 << 20)
                    if not c:
                        break
                    buf += c
            return {a["name"]: a for a in json.loads(buf)["agents"]}

        wait_for(lambda: sock.exists() or proc.poll() is not None, what="ctl socket")
        assert proc.poll() is None, (tmp_path / "ainit.log").read_text()
        st = wait_for(lambda: (s := status()) and all(a["state"] == "healthy" for a in s.values()) and s,
                      timeout=60, what="all MainPC agents healthy")
        assert len(st) == 61  # the 60 legacy agents and GPUProbe
        # planned order: each group's agents came up after the groups it
        # depends on were healthy (the earliest start of a group is after
        # the latest start of its dependencies)
        up = {}
        for a in st.values():
            up.setdefault(a["group"], []).append(a["uptime_ms"])
        started = {g: max(v) for g, v in up.items()}  # earliest start = largest uptime
        assert started["infra"] > started["core-services"] > started["memory-system"]
        assert started["core-services"] > started["gpu-infra"]
        r = subprocess.run([AINIT, "ctl", "--socket", str(sock), "status"], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()


def sh(*args):
    return subprocess.run(args, capture_output=True, text=True)


def test_pc2_waits_for_mainpc_two_supervisors(tmp_path):
    """configs/mainpc.yaml and configs/pc2.yaml (stub agents, real redis and
    nats) under two ainits on this host, each machine in a network
    namespace of its own joined by a veth pair: PC-2 waits for
    mainpc:ServiceRegistry and starts once MainPC's ainit says it is healthy."""
    why = netns_ok()
    if why:
        pytest.skip(why)
    for prog in ("redis-server", "nats-server"):
        if not shutil.which(prog):
            pytest.skip(f"{prog} not installed (mk/deps.sh)")
    tag = f"ainit-t{os.getpid() % 100000}"
    ns_m, ns_p = f"{tag}-m", f"{tag}-p"
    net = 10 + os.getpid() % 200
    r = sh("ip", "netns", "add", ns_m)
    if r.returncode:
        pytest.skip("ip netns add: " + r.stderr.strip())
    procs, logs = [], []
    try:
        for cmd in (["ip", "netns", "add", ns_p],
                    ["ip", "link", "add", f"{tag}a", "netns", ns_m, "type", "veth", "peer", "name",
                     f"{tag}b", "netns", ns_p],
                    ["ip", "-n", ns_m, "addr", "add", f"10.231.{net}.1/24", "dev", f"{tag}a"],
                    ["ip", "-n", ns_p, "addr", "add", f"10.231.{net}.2/24", "dev", f"{tag}b"]):
            r = sh(*cmd)
            assert r.returncode == 0, (cmd, r.stderr)
        for ns, dev in ((ns_m, f"{tag}a"), (ns_p, f"{tag}b")):
            for d in ("lo", dev):
                assert sh("ip", "-n", ns, "link", "set", d, "up").returncode == 0

        def start(name, ns, config, extra):
            ov = tmp_path / f"stub-{name}.yaml"
            with open(ov, "w") as f:
                subprocess.run(["/usr/bin/python3", str(ROOT / "configs" / "stub-override.py"), str(config),
                                "--agents", str(BUILD / "agents"), "--host",
                                "--data-dir", str(tmp_path / f"{name}-data"), *extra],
                               stdout=f, check=True)
            state = tmp_path / f"{name}-state"
            log = open(tmp_path / f"{name}.log", "wb")
            logs.append(log)
            p = subprocess.Popen(["ip", "netns", "exec", ns, AINIT, "run", "--config", str(config),
                                  "--config", str(ov), "--state-dir", str(state)],
                                 stdout=log, stderr=subprocess.STDOUT)
            procs.append(p)
            sock = state / "ctl.sock"
            wait_for(lambda: sock.exists() or p.poll() is not None, what=f"{name} ctl socket")
            assert p.poll() is None, (tmp_path / f"{name}.log").read_text()
            return sock

        def status(sock):
            import json
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(str(sock))
                s.sendall(b'{"cmd":"status"}\n')
                buf = b""
                while not buf.endswith(b"\n"):
                    c = s.recv(1 << 20)
                    if not c:
                        break
                    buf += c
            return {a["name"]: a for a in json.loads(buf)["agents"]}

        # PC-2 first: MainPC is not there, its groups wait and say why
        pc2 = start("pc2", ns_p, ROOT / "configs" / "pc2.yaml", ["--hosts", f"mainpc=10.231.{net}.1"])
        st = wait_for(lambda: (s := status(pc2)) and s["redis"]["state"] == "healthy"
                      and s["MemoryOrchestratorService"].get("waiting_reason") not in (None, "", "not probed yet")
                      and s,
                      timeout=30, what="PC-2 waiting for MainPC")
        w = st["MemoryOrchestratorService"]
        assert w["state"] == "waiting" and w["waiting_for"] == "mainpc:ServiceRegistry"
        assert f"10.231.{net}.1:9400" in w["waiting_reason"], w
        assert all(a["pid"] == 0 for a in st.values() if a["group"] != "infra")
        # MainPC comes up; then PC-2 follows by itself
        mainpc = start("mainpc", ns_m, ROOT / "configs" / "mainpc.yaml", [])
        wait_for(lambda: all(a["state"] == "healthy" for a in status(mainpc).values()),
                 timeout=60, what="MainPC all healthy")
        st = wait_for(lambda: (s := status(pc2)) and all(a["state"] == "healthy" for a in s.values()) and s,
                      timeout=60, what="PC-2 all healthy")
        assert len(st) >= 20
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in logs:
            log.close()
        sh("ip", "netns", "del", ns_m)
        sh("ip", "netns", "del", ns_p)
