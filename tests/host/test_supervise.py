"""Supervision on an ordinary host: restarts, burst -> failed, orphans,
clean stop, dependency order, agents that misbehave."""
import os
import signal
import time

from conftest import wait_for


def pids_with_parent(ppid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == ppid:
                out.append(int(d))
    return out


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still "exists": check state
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_starts_all_and_reports(ainit_run):
    a = ainit_run("""
version: 1
appliance: {hostname: t1}
groups:
  g:
    agents:
      one: {command: [sleep, "300"]}
      two: {command: [sleep, "300"]}
""")
    s = wait_for(lambda: all(x["state"] == "healthy" for x in a.status().values()) and a.status(),
                 what="both healthy")
    assert set(s) == {"one", "two"}
    for x in s.values():
        assert x["group"] == "g" and x["pid"] > 0 and x["restarts"] == 0
        assert alive(x["pid"])
    assert a.stop() == 0


def test_restart_on_failure_then_burst_failed(ainit_run):
    a = ainit_run("""
version: 1
groups:
  g:
    agents:
      crash: {command: [sh, -c, "exit 7"], restart: {policy: on-failure, delay: 50ms, burst: 3, within: 30s}}
      ok: {command: [sleep, "300"]}
""")
    x = a.wait_state("crash", "failed")
    assert x["restarts"] == 3
    assert "3 times" in x["reason"]
    # the other agent is untouched
    assert a.agent("ok")["state"] == "healthy"
    r = a.ctl("status")
    assert r.returncode == 3, r
    assert "failed" in r.stdout
    # ctl start gives a fresh budget
    assert a.request({"cmd": "start", "target": "crash"}).get("ok")
    wait_for(lambda: a.agent("crash")["restarts"] > 3, what="restart after ctl start")
    assert a.stop() == 0


def test_policies(ainit_run):
    a = ainit_run("""
version: 1
groups:
  g:
    agents:
      no:      {command: [sh, -c, "exit 1"], restart: "no"}
      clean:   {command: ["true"], restart: on-failure}
      always:  {command: ["true"], restart: {policy: always, delay: 50ms, burst: 1000, within: 1s}}
""")
    assert a.wait_state("no", "exited")["reason"] == "exited with status 1"
    assert a.wait_state("clean", "exited")["restarts"] == 0
    wait_for(lambda: a.agent("always")["restarts"] >= 3, what="always restarts clean exits")
    assert a.stop() == 0


def test_backoff_grows(ainit_run):
    a = ainit_run("""
version: 1
groups:
  g:
    agents:
      c: {command: [sh, -c, "exit 1"], restart: {delay: 100ms, max_delay: 400ms, burst: 100, within: 1m}}
""")
    wait_for(lambda: a.agent("c")["restarts"] >= 4, timeout=15, what="4 restarts")
    assert a.agent("c")["next_delay_ms"] == 400
    assert a.stop() == 0


def test_exec_failure_is_failed_with_reason(ainit_run, tmp_path):
    noexec = tmp_path / "noexec"
    noexec.write_text("#!/bin/sh\nexit 0\n")
    noexec.chmod(0o644)
    garbage = tmp_path / "garbage"
    garbage.write_text("not a program\n")
    garbage.chmod(0o755)
    a = ainit_run(f"""
version: 1
groups:
  g:
    agents:
      missing: {{command: [/nonexistent/agent], restart: always}}
      notexec: {{command: [{noexec}], restart: always}}
      badformat: {{command: [{garbage}], restart: always}}
      notinpath: {{command: [no-such-program-anywhere], restart: always}}
      fine: {{command: [sleep, "300"]}}
""")
    m = a.wait_state("missing", "failed")
    assert "No such file" in m["reason"] and m["restarts"] == 0
    assert "Permission denied" in a.wait_state("notexec", "failed")["reason"]
    assert "Exec format error" in a.wait_state("badformat", "failed")["reason"]
    assert "No such file" in a.wait_state("notinpath", "failed")["reason"]
    a.wait_state("fine", "healthy")
    assert a.stop() == 0


def test_orphans_reaped_and_nothing_left(ainit_run):
    # The agent forks a daemon that escapes its process group and exits.
    a = ainit_run("""
version: 1
groups:
  g:
    agents:
      forker:
        command: [sh, -c, "setsid sleep 300 & setsid sh -c 'sleep 0.3; exit 0' & sleep 0.1; exit 1"]
        restart: {policy: on-failure, delay: 200ms, burst: 100, within: 1m}
""")
    wait_for(lambda: a.agent("forker")["restarts"] >= 2, what="two restarts")
    me = a.proc.pid
    # the escaped sleeps are now our children (subreaper), not init's
    wait_for(lambda: len(pids_with_parent(me)) >= 2, what="orphans re-parented to ainit")
    st = a.request({"cmd": "status"})
    assert st["orphans_reaped"] >= 1
    # no zombie children accumulate
    zombies = [p for p in pids_with_parent(me)
               if open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"]
    time.sleep(0.3)
    zombies = [p for p in zombies if os.path.exists(f"/proc/{p}")]
    assert not zombies
    children = pids_with_parent(me)
    assert a.stop() == 0
    for p in children:
        assert not alive(p), f"pid {p} survived ainit"


def test_sigterm_ignored_gets_sigkill(ainit_run):
    a = ainit_run("""
version: 1
groups:
  g:
    agents:
      stubborn: {command: [sh, -c, "trap '' TERM; while :; do sleep 1; done"], stop: {timeout: 500ms}}
""")
    pid = a.wait_state("stubborn", "healthy")["pid"]
    t0 = time.monotonic()
    assert a.stop() == 0
    assert time.monotonic() - t0 < 10
    assert not alive(pid)
    assert "sending SIGKILL" in a.logtext()


def test_reverse_dependency_order_on_stop(ainit_run, tmp_path):
    order = tmp_path / "order"
    def agent(name):
        return (f'{{command: [sh, -c, "trap \\"echo {name} >> {order}; exit 0\\" TERM; '
                f'while :; do sleep 0.1; done"]}}')
    a = ainit_run(f"""
version: 1
groups:
  base:
    agents:
      db: {agent("db")}
  mid:
    depends_on: [base]
    agents:
      api: {agent("api")}
  top:
    agents:
      web:
        command: [sh, -c, "trap \\"echo web >> {order}; exit 0\\" TERM; while :; do sleep 0.1; done"]
        depends_on: [api]
""")
    wait_for(lambda: all(x["state"] == "healthy" for x in a.status().values()), what="all up")
    # started in dependency order
    s = a.status()
    assert s["db"]["pid"] < s["api"]["pid"] < s["web"]["pid"]
    assert a.stop() == 0
    assert order.read_text().split() == ["web", "api", "db"]


def test_dependency_waits_for_healthy(ainit_run):
    a = ainit_run("""
version: 1
groups:
  g:
    agents:
      base: {command: [/nonexistent/base]}
      dependent: {command: [sleep, "300"], depends_on: [base]}
""")
    a.wait_state("base", "failed")
    d = a.agent("dependent")
    assert d["state"] == "waiting" and d["waiting_for"] == "base"
    r = a.ctl("status")
    assert "waiting for base" in r.stdout
    assert a.stop() == 0


def test_ctl_stop_start_restart(ainit_run):
    a = ainit_run("""
version: 1
groups:
  g:
    agents:
      x: {command: [sleep, "300"]}
      y: {command: [sleep, "300"]}
""")
    pid = a.wait_state("x", "healthy")["pid"]
    assert a.ctl("stop", "x").returncode == 0
    assert a.wait_state("x", "exited")["pid"] == 0
    assert not alive(pid)
    assert a.ctl("start", "x").returncode == 0
    pid2 = a.wait_state("x", "healthy")["pid"]
    assert pid2 != pid
    assert a.ctl("restart", "g").returncode == 0
    wait_for(lambda: a.agent("x")["pid"] not in (0, pid2) and a.agent("x")["state"] == "healthy",
             what="x restarted")
    r = a.ctl("stop", "nosuch")
    assert r.returncode == 1 and "no agent or group" in r.stderr
    assert a.stop() == 0


def test_ctl_poweroff_exits_run(ainit_run):
    a = ainit_run("""
version: 1
groups: {g: {agents: {x: {command: [sleep, "300"]}}}}
""")
    a.wait_state("x", "healthy")
    assert a.ctl("poweroff").returncode == 0
    assert a.proc.wait(15) == 0


def test_bad_config_refused(tmp_path):
    import subprocess
    from conftest import AINIT
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("version: 1\ngroups:\n  g:\n    agents:\n      a: {comand: [x]}\n")
    r = subprocess.run([AINIT, "run", "--config", str(cfg), "--state-dir", str(tmp_path / "s")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert f"{cfg}:5:11: error: unknown key \"comand\"" in r.stderr
    assert "did you mean \"command\"" in r.stderr


def ctxt_switches(pid):
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        for line in open(f"/proc/{pid}/task/{task}/status"):
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def test_idle_supervisor_makes_no_wakeups(ainit_run):
    a = ainit_run("""
version: 1
groups:
  g:
    agents:
      x: {command: [sleep, "300"]}
      y: {command: [sleep, "300"]}
""")
    wait_for(lambda: all(v["state"] == "healthy" for v in a.status().values()), what="up")
    time.sleep(0.2)
    before = ctxt_switches(a.proc.pid)
    time.sleep(2.0)
    after = ctxt_switches(a.proc.pid)
    # No timers armed, nothing to read: the loop sleeps in epoll_wait.
    assert after - before == 0, f"{after - before} wakeups while idle"
    assert a.stop() == 0


def test_agents_die_with_a_killed_supervisor(ainit_run):
    a = ainit_run("""
version: 1
groups: {g: {agents: {x: {command: [sleep, "300"]}, y: {command: [sleep, "300"]}}}}
""")
    pids = [a.wait_state(n, "healthy")["pid"] for n in ("x", "y")]
    a.proc.kill()
    a.proc.wait()
    wait_for(lambda: not any(alive(p) for p in pids), what="agents gone with ainit")
