"""`ainit ctl reload` and SIGHUP: the running supervisor re-reads its config
and restarts only what changed. Every wait is for a state the supervisor
reports (status "reloading", agent states, pids), never for time."""
import json
import os
import re
import signal
import subprocess

from conftest import AINIT, BUILD, free_port, wait_for


def alive(pid):
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cmdline(pid):
    try:
        return open(f"/proc/{pid}/cmdline").read().split("\0")[:-1]
    except OSError:
        return None


def reloaded(a):
    """Wait until no reload is pending; return the status."""
    return wait_for(lambda: not a.request({"cmd": "status"})["reloading"] and a.status(),
                    what="reload applied")


def all_healthy(a, names):
    return wait_for(lambda: (s := a.status()) and all(s.get(n, {}).get("state") == "healthy"
                                                      for n in names) and s,
                    what=f"{names} healthy")


BASE = """
version: 1
groups:
  g:
    agents:
      keep: {command: [sleep, "300"]}
      change: {command: [sleep, "300"]}
      gone: {command: [sleep, "300"]}
"""

NEW = """
version: 1
groups:
  g:
    agents:
      keep: {command: [sleep, "300"]}
      change: {command: [sleep, "301"]}
      fresh: {command: [sleep, "302"], depends_on: [keep]}
"""


def test_reload_applies_only_the_difference(ainit_run):
    a = ainit_run(BASE)
    s = all_healthy(a, ["keep", "change", "gone"])
    keep, change, gone = s["keep"]["pid"], s["change"]["pid"], s["gone"]["pid"]
    a.cfg.write_text(NEW)
    r = a.ctl("reload")
    assert r.returncode == 0, r.stderr
    assert re.search(r"added\s+fresh", r.stdout), r.stdout
    assert re.search(r"removed\s+gone", r.stdout), r.stdout
    assert re.search(r"restarted\s+change \(command\)", r.stdout), r.stdout
    assert re.search(r"unchanged\s+1 agent", r.stdout), r.stdout
    reloaded(a)
    s = all_healthy(a, ["keep", "change", "fresh"])
    assert set(s) == {"keep", "change", "fresh"}
    # unchanged: the same process, nothing counted
    assert s["keep"]["pid"] == keep and s["keep"]["restarts"] == 0 and alive(keep)
    # changed: a new process with the new command
    assert s["change"]["pid"] != change and not alive(change)
    assert cmdline(s["change"]["pid"]) == ["sleep", "301"]
    assert s["change"]["reason"] == "reload: command changed", s["change"]
    assert "reload: command changed; restarting" in a.request({"cmd": "logs", "target": "change"})["text"]
    # removed: stopped and gone from status
    wait_for(lambda: not alive(gone), what="removed agent's process gone")
    assert cmdline(s["fresh"]["pid"]) == ["sleep", "302"]
    # a second reload of the same file changes nothing
    r = a.request({"cmd": "reload"})
    assert r["ok"] and r["unchanged"] == 3 and not r["added"] and not r["restarted"], r
    assert not r["removed"]
    assert {n: x["pid"] for n, x in reloaded(a).items()} == {n: x["pid"] for n, x in s.items()}
    assert a.stop() == 0


def test_broken_config_is_refused_and_nothing_changes(ainit_run):
    a = ainit_run(BASE)
    before = all_healthy(a, ["keep", "change", "gone"])
    a.cfg.write_text(NEW + '      bad: {command: [sleep, "1"], restart: {delay: soon}}\n')
    r = a.ctl("reload")
    assert r.returncode == 1
    assert "running configuration is unchanged" in r.stderr, r.stderr
    assert re.search(re.escape(str(a.cfg)) + r":\d+:\d+: error: ", r.stderr), r.stderr
    j = a.ctl("--json", "reload")
    assert j.returncode == 1
    reply = json.loads(j.stdout)
    assert "error" in reply and re.search(r":\d+:\d+: error: ", reply["diagnostics"]), reply
    s = a.status()
    assert not a.request({"cmd": "status"})["reloading"]
    assert {n: (x["pid"], x["state"]) for n, x in s.items()} == \
        {n: (x["pid"], x["state"]) for n, x in before.items()}
    assert a.stop() == 0


def test_sighup_reloads(ainit_run):
    a = ainit_run(BASE)
    s = all_healthy(a, ["keep", "change", "gone"])
    a.cfg.write_text(NEW)
    a.proc.send_signal(signal.SIGHUP)
    s2 = wait_for(lambda: "fresh" in (x := a.status()) and x, what="SIGHUP reload")
    s2 = all_healthy(a, ["keep", "change", "fresh"])
    assert "gone" not in s2
    assert s2["keep"]["pid"] == s["keep"]["pid"]
    assert cmdline(s2["change"]["pid"]) == ["sleep", "301"]
    # a broken config on SIGHUP: logged, nothing changes, ainit lives on
    a.cfg.write_text("version: 1\ngroups: {g: {agents: {x: {comand: [true]}}}}\n")
    a.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "refused" in a.logtext(), what="refusal logged")
    assert re.search(re.escape(str(a.cfg)) + r":\d+:\d+: error: ", a.logtext())
    assert {n: x["pid"] for n, x in a.status().items()} == {n: x["pid"] for n, x in s2.items()}
    assert a.stop() == 0


def test_non_admin_cannot_reload(ainit_run):
    a = ainit_run(BASE)
    for d in [a.state, *a.state.parents]:
        if str(d) in ("/", "/tmp"):
            break
        os.chmod(d, os.stat(d).st_mode | 0o711)
    os.chmod(a.sock, 0o666)
    s = all_healthy(a, ["keep", "change", "gone"])
    a.cfg.write_text(NEW)
    r = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", AINIT, "ctl",
         "--socket", str(a.sock), "reload"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "permission denied" in r.stderr
    assert not a.request({"cmd": "status"})["reloading"]
    assert set(a.status()) == {"keep", "change", "gone"}
    assert a.agent("change")["pid"] == s["change"]["pid"]
    assert a.stop() == 0


BACKOFF = """
version: 1
groups:
  g:
    agents:
      flappy: {command: [sh, -c, "exit 3"], restart: {policy: always, delay: 300ms, max_delay: 300ms, burst: 1000, within: 1h}}
      broken: {command: [sh, -c, "exit 1"], restart: {policy: on-failure, delay: 10ms, burst: 1, within: 1h}}
      steady: {command: [sleep, "300"]}
      parked: {command: [sleep, "300"]}
"""


def test_reload_with_agents_in_backoff_and_failed(ainit_run):
    a = ainit_run(BACKOFF)
    a.wait_state("parked", "healthy")
    assert a.request({"cmd": "stop", "target": "parked"})["ok"]
    a.wait_state("parked", "exited")
    a.wait_state("broken", "failed")
    wait_for(lambda: a.agent("flappy")["restarts"] >= 2, what="flappy restarting")
    steady = a.wait_state("steady", "healthy")["pid"]
    # broken gets a command that works; flappy and steady stay as they are
    a.cfg.write_text(BACKOFF.replace('[sh, -c, "exit 1"]', '[sleep, "300"]')
                     .replace('parked: {command: [sleep, "300"]}', 'parked: {command: [sleep, "303"]}'))
    before = a.agent("flappy")["restarts"]
    r = a.request({"cmd": "reload"})
    assert r["ok"], r
    assert sorted(x["name"] for x in r["restarted"]) == ["broken", "parked"] and r["unchanged"] == 2, r
    s = reloaded(a)
    # the unchanged agent kept its counters, and its backoff timer still fires
    assert s["flappy"]["restarts"] >= before
    wait_for(lambda: a.agent("flappy")["restarts"] > before + 1, what="flappy restarts after reload")
    assert a.wait_state("broken", "healthy")["restarts"] == 0
    assert a.agent("steady")["pid"] == steady
    # stopped by ctl stop: it takes the new config and stays stopped
    assert a.agent("parked")["state"] == "exited"
    assert a.request({"cmd": "start", "target": "parked"})["ok"]
    assert cmdline(a.wait_state("parked", "healthy")["pid"]) == ["sleep", "303"]
    assert a.stop() == 0


def test_unchanged_agent_keeps_logs_and_health_checks(ainit_run, tmp_path):
    port = free_port()
    server = tmp_path / "server.py"
    server.write_text("import socket\n"
                      "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                      f"s.bind(('127.0.0.1',{port})); s.listen(16)\n"
                      "while True:\n  c,_=s.accept(); c.close()\n")
    cfg = f"""
version: 1
groups:
  g:
    agents:
      ticker: {{command: [sh, -c, 'i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.05; done']}}
      served: {{command: [/usr/bin/python3, "{server}"], health: {{tcp: {port}, interval: 100ms}}}}
      other: {{command: [sleep, "300"]}}
"""
    a = ainit_run(cfg)
    s = all_healthy(a, ["ticker", "served", "other"])
    # a follower of ticker's log, kept open across the reload
    fol = subprocess.Popen([AINIT, "ctl", "--socket", str(a.sock), "logs", "ticker", "-f", "-n", "1"],
                           stdout=subprocess.PIPE, text=True)
    first = fol.stdout.readline()
    assert "tick" in first
    a.cfg.write_text(cfg.replace('[sleep, "300"]', '[sleep, "301"]'))
    r = a.request({"cmd": "reload"})
    assert r["ok"] and [x["name"] for x in r["restarted"]] == ["other"], r
    reloaded(a)
    checks = a.request({"cmd": "health", "target": "served"})["probe"]["checks"]
    wait_for(lambda: a.request({"cmd": "health", "target": "served"})["probe"]["checks"] > checks + 2,
             what="health checks go on after the reload")
    assert a.agent("served")["state"] == "healthy"
    assert a.agent("served")["pid"] == s["served"]["pid"]
    assert a.agent("ticker")["pid"] == s["ticker"]["pid"]
    # the follower still gets ticker's lines, numbered past the reload
    n0 = int(re.search(r"tick (\d+)", a.request({"cmd": "logs", "target": "ticker", "n": 1})["text"]).group(1))
    line = wait_for(lambda: (l := fol.stdout.readline()) and "tick" in l and
                    int(re.search(r"tick (\d+)", l).group(1)) > n0 and l, what="followed line after reload")
    assert "tick" in line
    fol.terminate()
    fol.wait()
    assert a.stop() == 0


SANDBOXED = """
version: 1
groups:
  stay:
    user: root
    network: none
    agents:
      s1: {command: [sleep, "300"]}
  rebuilt:
    user: root
    network: none
    resources: {pids: 100}
    agents:
      r1: {command: [sleep, "300"]}
  dropped:
    user: root
    network: none
    agents:
      d1: {command: [sleep, "300"]}
"""


def pidns(pid):
    return os.readlink(f"/proc/{pid}/ns/pid")


def holder_of(pid):
    """Host pid of the group holder (PID 1 of agent pid's pid namespace).
    Namespace inode numbers are recycled, holder pids are not (in a test's
    time), so the holder tells one sandbox from another."""
    ns = pidns(pid)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if open(f"/proc/{d}/comm").read().strip() == "ainit-holder" and pidns(d) == ns:
                return int(d)
        except OSError:
            continue
    return None


def test_reload_with_sandboxes(ainit_run):
    a = ainit_run(SANDBOXED, extra_args=("--sandbox",))
    s = all_healthy(a, ["s1", "r1", "d1"])
    h_s, h_r, h_d = (holder_of(s[n]["pid"]) for n in ("s1", "r1", "d1"))
    assert h_s and h_r and h_d and len({h_s, h_r, h_d}) == 3
    d1 = s["d1"]["pid"]
    new = (SANDBOXED.replace("pids: 100", "pids: 200")
           .replace("      s1: {command: [sleep, \"300\"]}",
                    "      s1: {command: [sleep, \"300\"]}\n      s2: {command: [sleep, \"301\"]}")
           .replace("  dropped:\n    user: root\n    network: none\n    agents:\n      d1: {command: [sleep, \"300\"]}\n",
                    "  added:\n    user: root\n    network: none\n    agents:\n      n1: {command: [sleep, \"302\"]}\n"))
    a.cfg.write_text(new)
    r = a.request({"cmd": "reload"})
    assert r["ok"], r
    assert sorted(r["added"]) == ["n1", "s2"] and r["removed"] == ["d1"], r
    assert r["rebuilt_groups"] == ["rebuilt"], r
    assert r["restarted"] == [{"name": "r1", "changed": "sandbox.resources"}], r
    reloaded(a)
    s2 = all_healthy(a, ["s1", "s2", "r1", "n1"])
    assert set(s2) == {"s1", "s2", "r1", "n1"}
    # unchanged group: same process, and an added agent joins its sandbox
    assert s2["s1"]["pid"] == s["s1"]["pid"]
    assert holder_of(s2["s1"]["pid"]) == h_s and holder_of(s2["s2"]["pid"]) == h_s
    # changed sandbox settings: a new sandbox (holder) for its agents; the
    # old one and the dropped group's are gone
    h_r2, h_n = holder_of(s2["r1"]["pid"]), holder_of(s2["n1"]["pid"])
    assert h_r2 and h_n and len({h_s, h_r2, h_n, h_r, h_d}) == 5
    assert not alive(h_r) and not alive(h_d)
    wait_for(lambda: not alive(d1), what="dropped group's agent gone")
    assert a.stop() == 0


def read_events(p, pred):
    got = []
    while True:
        line = p.stdout.readline()
        assert line, f"events stream ended; seen: {got}"
        got.append(json.loads(line)["event"])
        if pred(got):
            return got


def test_removed_agents_stop_in_reverse_dependency_order(ainit_run):
    a = ainit_run("""
version: 1
groups:
  g:
    agents:
      base: {command: [sleep, "300"]}
      mid: {command: [sleep, "300"], depends_on: [base]}
      top: {command: [sh, -c, "trap 'sleep 0.3; exit 0' TERM; sleep 300 & wait"], depends_on: [mid]}
      stays: {command: [sleep, "300"]}
""")
    all_healthy(a, ["base", "mid", "top", "stays"])
    p = subprocess.Popen([AINIT, "ctl", "--socket", str(a.sock), "--json", "events"],
                         stdout=subprocess.PIPE, text=True)
    assert json.loads(p.stdout.readline())["ok"]
    a.cfg.write_text("""
version: 1
groups:
  g:
    agents:
      stays: {command: [sleep, "300"]}
      added: {command: [sleep, "300"], depends_on: [stays]}
""")
    r = a.request({"cmd": "reload"})
    assert r["ok"] and sorted(r["removed"]) == ["base", "mid", "top"] and r["added"] == ["added"], r
    evs = read_events(p, lambda g: any(e["agent"] == "added" and e["to"] == "healthy" for e in g))
    p.kill()
    p.wait()
    order = [(e["agent"], e["to"]) for e in evs if e["agent"] in ("base", "mid", "top")]
    # each goes down only once what depends on it has exited
    assert order.index(("top", "exited")) < order.index(("mid", "stopping")), order
    assert order.index(("mid", "exited")) < order.index(("base", "stopping")), order
    # the added agent starts after the old ones are gone (one swap)
    names = [e["agent"] for e in evs]
    assert names.index("added") > max(i for i, n in enumerate(names) if n in ("base", "mid", "top"))
    assert set(reloaded(a)) == {"stays", "added"}
    assert a.stop() == 0


def test_appliance_changes_are_reported_not_applied(ainit_run):
    cfg = """
version: 1
appliance: {hostname: before}
groups:
  g:
    agents:
      x: {command: [sleep, "300"]}
"""
    a = ainit_run(cfg)
    pid = a.wait_state("x", "healthy")["pid"]
    a.cfg.write_text(cfg.replace("hostname: before", "hostname: after"))
    r = a.ctl("reload")
    assert r.returncode == 0, r.stderr
    assert "NOT APPLIED (needs reboot): appliance.hostname" in r.stdout, r.stdout
    assert "nothing to restart" in r.stdout
    j = json.loads(a.ctl("--json", "reload").stdout)
    assert j["needs_reboot"] == ["appliance.hostname"] and j["unchanged"] == 1, j
    reloaded(a)
    assert a.request({"cmd": "status"})["hostname"] == "before"
    assert a.agent("x")["pid"] == pid
    assert a.stop() == 0


def test_requests_while_a_reload_waits_and_sigterm(ainit_run, tmp_path):
    gate = tmp_path / "gate"
    slow = f"trap 'while [ ! -e {gate} ]; do sleep 0.05; done; exit 0' TERM; sleep 300 & wait"
    cfg = f"""
version: 1
groups:
  g:
    agents:
      slow: {{command: [sh, -c, "{slow}"]}}
      steady: {{command: [sleep, "300"]}}
"""
    a = ainit_run(cfg)
    s = all_healthy(a, ["slow", "steady"])
    a.cfg.write_text(cfg.replace("exit 0", "exit 0 "))
    r = a.request({"cmd": "reload"})
    assert r["ok"] and [x["name"] for x in r["restarted"]] == ["slow"] and r["stopping"] == 1, r
    # slow does not stop until the gate opens: the reload waits for it
    assert a.request({"cmd": "status"})["reloading"]
    assert "reload is in progress" in a.request({"cmd": "stop", "target": "steady"})["error"]
    assert "reload is in progress" in a.request({"cmd": "restart", "target": "slow"})["error"]
    assert "already in progress" in a.request({"cmd": "reload"})["error"]
    assert a.agent("steady")["pid"] == s["steady"]["pid"]
    gate.touch()
    s2 = reloaded(a)
    assert s2["slow"]["pid"] != s["slow"]["pid"] and s2["steady"]["pid"] == s["steady"]["pid"]
    all_healthy(a, ["slow", "steady"])
    # a reload still waiting when SIGTERM comes is dropped; ainit ends cleanly
    gate.unlink()
    a.cfg.write_text(cfg)
    assert a.request({"cmd": "reload"})["ok"]
    assert a.request({"cmd": "status"})["reloading"]
    a.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "abandoned" in a.logtext(), what="pending reload abandoned")
    gate.touch()
    assert a.stop() == 0


def test_unchanged_notify_agent_keeps_its_socket(ainit_run):
    stub = str(BUILD / "agents" / "stub-agent")
    if not os.path.exists(stub):
        import pytest
        pytest.skip(f"{stub} not built (make agents)")
    cfg = f"""
version: 1
defaults: {{user: root}}
groups:
  g:
    agents:
      watched: {{command: [{stub}, --no-service], health: {{notify: true, watchdog: 600ms, retries: 1}}}}
"""
    a = ainit_run(cfg)
    w = a.wait_state("watched", "healthy")
    # a notify agent added in front of it: every index moves
    a.cfg.write_text(cfg.replace("    agents:\n", f"    agents:\n      first: {{command: [{stub}, --no-service], health: {{notify: true, watchdog: 600ms, retries: 1}}}}\n"))
    r = a.request({"cmd": "reload"})
    assert r["ok"] and r["added"] == ["first"] and r["unchanged"] == 1, r
    reloaded(a)
    a.wait_state("first", "healthy")
    checks = a.request({"cmd": "health", "target": "watched"})["probe"]["checks"]
    # WATCHDOG=1 every 300 ms keeps arriving on the same socket: five more
    # pings span more than the 600 ms watchdog, so a lost socket would have
    # failed it and restarted the agent
    wait_for(lambda: a.request({"cmd": "health", "target": "watched"})["probe"]["checks"] >= checks + 5,
             what="watchdog pings after the reload")
    x = a.agent("watched")
    assert x["state"] == "healthy" and x["restarts"] == 0 and x["pid"] == w["pid"], x
    assert a.stop() == 0
