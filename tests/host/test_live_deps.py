"""Dependencies stay live after start: an edge with restart: true takes its
dependant down when the dependency leaves healthy and brings it back after;
a plain edge keeps the dependant running and status names the dependency."""
from conftest import wait_for

CONFIG = """
version: 1
groups:
  g:
    agents:
      db: {command: [sleep, "300"]}
      tied: {command: [sleep, "300"], depends_on: [{name: db, restart: true}]}
      loose: {command: [sleep, "300"], depends_on: [db]}
"""


def test_restart_edge_follows_its_dependency(ainit_run):
    a = ainit_run(CONFIG)
    wait_for(lambda: all(x["state"] == "healthy" for x in a.status().values()), what="all up")
    s = a.status()
    tied0, loose0 = s["tied"]["pid"], s["loose"]["pid"]
    assert {"name": "db", "on_failure": "restart"} in s["tied"]["deps"]
    assert {"name": "db", "on_failure": "keep-running"} in s["loose"]["deps"]
    assert a.request({"cmd": "stop", "target": "db"})["ok"]
    a.wait_state("db", "exited")
    # the tied agent went down and waits for db; the loose one runs on
    t = a.wait_state("tied", "waiting")
    assert t["waiting_for"] == "db"
    l = a.agent("loose")
    assert l["state"] == "healthy" and l["pid"] == loose0 and l["dep_down"] == "db"
    assert "dependency db is not healthy" in a.ctl("status").stdout
    assert a.request({"cmd": "start", "target": "db"})["ok"]
    t = a.wait_state("tied", "healthy")
    assert t["pid"] not in (0, tied0)
    wait_for(lambda: a.agent("loose")["dep_down"] is None, what="loose sees db back")
    assert a.agent("loose")["pid"] == loose0
    assert a.stop() == 0


def test_dependency_edge_syntax_errors(tmp_path):
    import subprocess
    from conftest import AINIT
    cfg = tmp_path / "c.yaml"
    cfg.write_text("version: 1\ngroups:\n  g:\n    agents:\n      a: {command: [\"true\"]}\n"
                   "      b: {command: [\"true\"], depends_on: [{name: a, restrat: true}, {restart: true}]}\n")
    r = subprocess.run([AINIT, "check", str(cfg)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert 'unknown key "restrat" in a dependency; did you mean "restart"?' in r.stderr
    assert "a dependency written as a mapping needs name" in r.stderr
