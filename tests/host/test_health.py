"""Health checks against real peers: stub-agent (libzmq REP), the pyzmq
example agent, TCP listeners, exec commands, sd_notify senders; and the bad
peers: junk replies, silence, nothing listening, a port already held, an
agent that turns unhealthy. Each ends in its documented state with a clear
reason in `ctl status` / `ctl health`; everything else carries on."""
import os
import socket
import urllib.error
import urllib.request

import pytest

from conftest import AINIT, BUILD, free_port, wait_for

STUB = str(BUILD / "agents" / "stub-agent")
PYAGENT = str(BUILD / "agents" / "example_agent.py")
PY = "/usr/bin/python3"

FAST = "{interval: 1s, timeout: 400ms, retries: 2, start_interval: 200ms}"


@pytest.fixture(autouse=True)
def need_agents():
    if not os.path.exists(STUB):
        pytest.skip(f"{STUB} not built (make agents)")


def health(a, name):
    r = a.request({"cmd": "health", "target": name})
    assert "error" not in r, r
    return r


def test_zmq_and_tcp_checks_pass(ainit_run):
    p1, h1, p2, h2, p3 = (free_port() for _ in range(5))
    a = ainit_run(f"""
version: 1
defaults: {{user: root, health: {FAST}}}
groups:
  g:
    agents:
      stub: {{command: [{STUB}], port: {p1}, health_port: {h1}, health: {{zmq: {h1}}}}}
      py: {{command: [{PY}, {PYAGENT}], port: {p2}, health_port: {h2}, health: {{zmq: {h2}}}}}
      tcp: {{command: [{STUB}, --health, none], port: {p3}, health: {{tcp: {p3}}}}}
""")
    for n in ("stub", "py", "tcp"):
        a.wait_state(n, "healthy")
    h = health(a, "stub")
    assert h["health"] == "healthy"
    assert h["probe"]["kind"] == "zmq" and h["probe"]["target"] == f"127.0.0.1:{h1}"
    assert h["probe"]["last_ok"] and h["probe"]["last"] == "status ok"
    assert h["probe"]["last_latency_us"] > 0
    assert health(a, "py")["probe"]["last"] == "status ok"
    assert health(a, "tcp")["probe"]["last"] == "connected"
    # the CLI says the same in words
    out = a.ctl("health", "stub").stdout
    assert "check: zmq 127.0.0.1:%d" % h1 in out and "last: pass" in out
    # status: HEALTH and PORTS columns
    st = a.ctl("status").stdout
    assert "HEALTH" in st and "PORTS" in st and f"{p1}/{h1}" in st
    assert a.stop() == 0


def test_zmq_through_libzmq(ainit_run):
    p1, h1 = free_port(), free_port()
    env = dict(os.environ, AINIT_ZMQ_PROBE="libzmq")
    a = ainit_run(f"""
version: 1
defaults: {{user: root, health: {FAST}}}
groups:
  g:
    agents:
      stub: {{command: [{STUB}], port: {p1}, health_port: {h1}, health: {{zmq: {h1}}}}}
""", env=env)
    a.wait_state("stub", "healthy")
    assert health(a, "stub")["probe"]["last"] == "status ok"
    assert a.stop() == 0


def test_bad_health_peers(ainit_run):
    ports = [free_port() for _ in range(8)]
    a = ainit_run(f"""
version: 1
defaults: {{user: root, health: {FAST}, restart: {{policy: always, delay: 2s}}}}
groups:
  g:
    agents:
      junk: {{command: [{STUB}, --health, junk], port: {ports[0]}, health_port: {ports[1]}, health: {{zmq: {ports[1]}}}}}
      silent: {{command: [{STUB}, --health, silent], port: {ports[2]}, health_port: {ports[3]}, health: {{zmq: {ports[3]}}}}}
      bad: {{command: [{STUB}, --health, bad], port: {ports[4]}, health_port: {ports[5]}, health: {{zmq: {ports[5]}}}}}
      deaf: {{command: [sleep, "300"], health: {{zmq: {ports[6]}}}}}
      fine: {{command: [{STUB}], port: {ports[7]}, health_port: {free_port()}, health: {{tcp: {ports[7]}}}}}
""")
    reasons = {
        "junk": "reply is not a JSON object",
        "silent": "sent health_check to 127.0.0.1:%d, no reply within 400ms" % ports[3],
        "bad": 'status "error": stub says unhealthy',
        "deaf": "connect 127.0.0.1:%d: Connection refused" % ports[6],
    }
    for name, why in reasons.items():
        s = wait_for(lambda: (x := a.agent(name))["restarts"] >= 1 and x, timeout=15,
                     what=f"{name} restarted for failing checks")
        assert "health check failed 2 times" in s["reason"] and why in s["reason"], s
        assert why in health(a, name)["probe"]["last"]
    assert a.agent("fine")["state"] == "healthy" and a.agent("fine")["restarts"] == 0
    st = a.ctl("status").stdout
    assert "reply is not a JSON object" in st
    assert a.stop() == 0


def test_exec_check(ainit_run, tmp_path):
    a = ainit_run(f"""
version: 1
defaults: {{user: root, health: {FAST}, restart: {{policy: always, delay: 5s}}}}
groups:
  g:
    agents:
      ok: {{command: [sleep, "300"], health: {{exec: [sh, -c, "echo all good; exit 0"]}}}}
      fails: {{command: [sleep, "300"], health: {{exec: [sh, -c, "echo disk full >&2; exit 3"]}}}}
      hangs: {{command: [sleep, "300"], health: {{exec: [sleep, "30"]}}}}
      missing: {{command: [sleep, "300"], health: {{exec: [/nonexistent/check]}}}}
""")
    a.wait_state("ok", "healthy")
    assert health(a, "ok")["probe"]["last"] == "exit 0: all good"
    s = wait_for(lambda: (x := a.agent("fails"))["restarts"] >= 1 and x, timeout=15, what="fails restarted")
    assert "exit 3: disk full" in s["reason"]
    s = wait_for(lambda: (x := a.agent("hangs"))["restarts"] >= 1 and x, timeout=15, what="hangs restarted")
    assert "sleep 30: killed after 400ms" in s["reason"]
    s = wait_for(lambda: (x := a.agent("missing"))["restarts"] >= 1 and x, timeout=15, what="missing restarted")
    assert "/nonexistent/check" in s["reason"] and "No such file" in s["reason"], s
    # killed checks are reaped: no zombie children of ainit
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            assert not (stat[0] == "Z" and int(stat[1]) == a.proc.pid), f"zombie {pid}"
    assert a.stop() == 0


NOTIFY_ONCE = r'''
import os, socket, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"STATUS=warming up\nREADY=1", os.environ["NOTIFY_SOCKET"])
time.sleep(300)
'''

NOTIFY_OTHER = r'''
import os, socket, subprocess, sys, time
# a process outside the agent's session pretends to be it: ignored
subprocess.Popen([sys.executable, "-c",
  "import os,socket; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)"
  ".sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])"], start_new_session=True).wait()
time.sleep(300)
'''


def test_notify(ainit_run, tmp_path):
    (tmp_path / "once.py").write_text(NOTIFY_ONCE)
    (tmp_path / "other.py").write_text(NOTIFY_OTHER)
    a = ainit_run(f"""
version: 1
defaults: {{user: root, restart: {{policy: always, delay: 5s}}}}
groups:
  g:
    agents:
      stub: {{command: [{STUB}, --no-service], health: {{notify: true, watchdog: 600ms, retries: 1}}}}
      once: {{command: [{PY}, {tmp_path}/once.py], health: {{notify: true, timeout: 1s}}}}
      lapsed: {{command: [{PY}, {tmp_path}/once.py], health: {{notify: true, watchdog: 500ms, retries: 1}}}}
      never: {{command: [sleep, "300"], health: {{notify: true, timeout: 700ms, retries: 1}}}}
      other: {{command: [{PY}, {tmp_path}/other.py], health: {{notify: true, timeout: 1s, retries: 1}}}}
""")
    a.wait_state("stub", "healthy")
    a.wait_state("once", "healthy")
    h = health(a, "once")["probe"]
    assert h["ready"] and h["status_text"] == "warming up" and h["last"] == "READY=1"
    # the stub pings WATCHDOG=1 every 300 ms: still healthy well past 600 ms
    import time
    time.sleep(1.5)
    s = a.agent("stub")
    assert s["state"] == "healthy" and s["restarts"] == 0
    assert health(a, "stub")["probe"]["checks"] >= 3
    s = wait_for(lambda: (x := a.agent("lapsed"))["restarts"] >= 1 and x, timeout=10, what="watchdog")
    assert "no WATCHDOG=1 within 500ms" in s["reason"]
    s = wait_for(lambda: (x := a.agent("never"))["restarts"] >= 1 and x, timeout=10, what="no READY")
    assert "no READY=1" in s["reason"]
    s = wait_for(lambda: (x := a.agent("other"))["restarts"] >= 1 and x, timeout=10, what="impostor")
    assert "no READY=1" in s["reason"]
    assert health(a, "other")["probe"]["ignored_senders"] >= 1
    assert a.stop() == 0


def test_unhealthy_restarts_and_port_held(ainit_run):
    p1, h1, p2, h2 = (free_port() for _ in range(4))
    held = socket.socket()
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    held.bind(("0.0.0.0", p2))
    held.listen()
    try:
        a = ainit_run(f"""
version: 1
defaults: {{user: root, health: {FAST}}}
groups:
  g:
    agents:
      sours: {{command: [{STUB}, --unhealthy-after, 1s], port: {p1}, health_port: {h1}, health: {{zmq: {h1}}},
               restart: {{policy: on-failure, delay: 100ms}}}}
      clash: {{command: [{STUB}], port: {p2}, health_port: {h2}, health: {{zmq: {h2}}},
               restart: {{policy: on-failure, delay: 50ms, burst: 3, within: 60s}}}}
""")
        a.wait_state("sours", "healthy")
        # turns bad, fails twice, is stopped (exit 0 on SIGTERM) and restarted anyway
        s = wait_for(lambda: (x := a.agent("sours"))["restarts"] >= 1 and x, timeout=15, what="restart")
        assert 'status "error"' in s["reason"]
        a.wait_state("sours", "healthy", timeout=10)
        # the port another process holds: the agent exits 3 every time, then failed
        s = a.wait_state("clash", "failed", timeout=15)
        assert "restarted 3 times" in s["reason"]
        logs = a.ctl("logs", "clash").stdout
        assert "Address already in use" in logs
        assert a.ctl("status").returncode != 0  # a failed agent makes status non-zero
        assert a.stop() == 0
    finally:
        held.close()


def test_metrics_and_remote_health_endpoint(ainit_run):
    p1, h1, mp = free_port(), free_port(), free_port()
    a = ainit_run(f"""
version: 1
appliance: {{metrics: {{listen: "127.0.0.1:{mp}"}}}}
defaults: {{user: root, health: {FAST}}}
groups:
  g:
    agents:
      stub: {{command: [{STUB}], port: {p1}, health_port: {h1}, health: {{zmq: {h1}}}}}
      down: {{command: [sh, -c, "exit 1"], restart: {{policy: no}}}}
""")
    a.wait_state("stub", "healthy")
    a.wait_state("down", "exited")
    text = urllib.request.urlopen(f"http://127.0.0.1:{mp}/metrics", timeout=5).read().decode()
    assert 'ainit_agent_healthy{agent="stub",group="g"} 1' in text
    assert 'ainit_agent_up{agent="down",group="g"} 0' in text
    assert 'ainit_health_checks_total{agent="stub",group="g"}' in text
    assert "ainit_resident_memory_bytes " in text
    r = urllib.request.urlopen(f"http://127.0.0.1:{mp}/health/stub", timeout=5)
    assert r.status == 200 and b'"status":"ok"' in r.read()
    for name, code in (("down", 503), ("nosuch", 404)):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{mp}/health/{name}", timeout=5)
        assert e.value.code == code
    # a client that connects and says nothing does not block ctl
    idle = socket.create_connection(("127.0.0.1", mp))
    assert a.request({"cmd": "ping"})["ok"]
    idle.close()
    assert a.stop() == 0


def test_checks_run_inside_the_sandbox(ainit_run, tmp_path):
    """--sandbox: an exec check runs in the agent's group (its hostname, its
    pid namespace), and an sd_notify agent reaches its socket from inside."""
    (tmp_path / "once.py").write_text(NOTIFY_ONCE)
    a = ainit_run(f"""
version: 1
defaults: {{health: {FAST}}}
groups:
  boxed:
    user: root
    network: none
    volumes: ['{tmp_path}:/mnt']
    agents:
      e: {{command: [sleep, "300"],
          health: {{exec: [sh, -c, 'test "$(hostname)" = boxed && test "$(cat /proc/1/comm)" = ainit-holder && echo inside']}}}}
      n: {{command: [{PY}, /mnt/once.py], health: {{notify: true, timeout: 5s}}}}
""", extra_args=("--sandbox",))
    st = wait_for(lambda: (s := a.status()) and s["e"]["state"] in ("healthy", "failed", "backoff") and s,
                  timeout=15, what="e checked")
    if st["e"]["state"] != "healthy" and "sandbox" in (st["e"].get("reason") or ""):
        pytest.skip("sandbox unavailable here: " + st["e"]["reason"])
    assert st["e"]["state"] == "healthy", st["e"]
    assert health(a, "e")["probe"]["last"] == "exit 0: inside"
    a.wait_state("n", "healthy", timeout=15)
    assert health(a, "n")["probe"]["status_text"] == "warming up"
    assert a.stop() == 0


def test_agent_environment(ainit_run, tmp_path):
    p, h = free_port(), free_port()
    a = ainit_run(f"""
version: 1
defaults: {{user: root, environment: {{LOG_LEVEL: INFO}}}}
groups:
  grp:
    agents:
      envy: {{command: [sh, -c, "env > {tmp_path}/env; exec sleep 300"], port: {p}, health_port: {h},
             health: {{notify: true, timeout: 2s}}, restart: {{policy: no}}, on_unhealthy: ignore}}
""")
    wait_for(lambda: (tmp_path / "env").exists() and "NOTIFY_SOCKET" in (tmp_path / "env").read_text(),
             what="env written")
    env = dict(l.split("=", 1) for l in (tmp_path / "env").read_text().splitlines() if "=" in l)
    assert env["AINIT_AGENT"] == "envy" and env["AINIT_GROUP"] == "grp"
    assert env["AGENT_PORT"] == str(p) and env["HEALTH_CHECK_PORT"] == str(h)
    assert env["ZMQ_BIND_IP"] == "0.0.0.0" and env["LOG_LEVEL"] == "INFO"
    assert env["NOTIFY_SOCKET"].endswith("/notify/0.sock") and os.path.exists(env["NOTIFY_SOCKET"])
    assert a.stop() == 0


def test_stub_ignoring_sigterm_and_orphans(ainit_run):
    p, h = free_port(), free_port()
    a = ainit_run(f"""
version: 1
defaults: {{user: root}}
groups:
  g:
    agents:
      stubborn: {{command: [{STUB}, --ignore-sigterm, --orphan], port: {p}, health_port: {h},
                 health: {{zmq: {h}}}, stop: {{timeout: 500ms}}}}
""")
    s = a.wait_state("stubborn", "healthy")
    wait_for(lambda: "that will be orphaned" in a.ctl("logs", "stubborn").stdout, what="orphan forked")
    orphan = int(a.ctl("logs", "stubborn").stdout.split("forked child ")[1].split()[0])
    assert a.ctl("stop", "stubborn").returncode == 0
    s = a.wait_state("stubborn", "exited", timeout=10)
    assert "did not stop within 500ms of SIGTERM; killed" in s["reason"]
    assert "ignoring SIGTERM" in a.ctl("logs", "stubborn").stdout
    # its forked child went with its process group
    wait_for(lambda: not os.path.exists(f"/proc/{orphan}") or
             open(f"/proc/{orphan}/stat").read().rsplit(")", 1)[1].split()[0] == "Z",
             timeout=5, what="the orphan is gone")
    assert a.stop() == 0


def test_metrics_group_figures_from_cgroup(ainit_run):
    mp = free_port()
    a = ainit_run(f"""
version: 1
appliance: {{metrics: {{listen: "127.0.0.1:{mp}"}}}}
groups:
  busy:
    user: root
    agents:
      spin: {{command: [sh, -c, "while :; do :; done"]}}
""", extra_args=("--sandbox",))
    a.wait_state("spin", "healthy", "failed")
    if a.agent("spin")["state"] != "healthy":
        pytest.skip("sandbox unavailable here: " + (a.agent("spin").get("reason") or ""))
    import re
    import time
    time.sleep(0.5)
    text = urllib.request.urlopen(f"http://127.0.0.1:{mp}/metrics", timeout=5).read().decode()
    m = re.search(r'ainit_group_cpu_seconds_total\{group="busy"\} ([0-9.e+-]+)', text)
    if not m:
        pytest.skip("no cgroup v2 for the group here (cpu.stat missing)")
    assert float(m.group(1)) > 0.1
    # memory and pids appear only where those controllers are enabled
    for ctl, metric in (("memory", "ainit_group_memory_bytes"), ("pids", "ainit_group_pids")):
        if f'{metric}{{group="busy"}}' in text:
            assert re.search(metric + r'\{group="busy"\} [1-9]', text)
    assert a.stop() == 0
