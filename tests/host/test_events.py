"""`ainit ctl events`: state changes pushed as they happen."""
import json
import subprocess
import time

from conftest import AINIT, wait_for


def read_until(p, pred, timeout=10):
    got = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = p.stdout.readline()
        if not line:
            break
        got.append(line)
        if pred(got):
            return got
    raise AssertionError(f"events seen: {got}")


def test_events_stream(ainit_run):
    a = ainit_run("""
version: 1
groups:
  g:
    agents:
      x: {command: [sleep, "300"]}
      y: {command: [sleep, "300"], depends_on: [{name: x, restart: true}]}
""")
    wait_for(lambda: all(v["state"] == "healthy" for v in a.status().values()), what="up")
    p = subprocess.Popen([AINIT, "ctl", "--socket", str(a.sock), "--json", "events"],
                         stdout=subprocess.PIPE, text=True)
    first = json.loads(p.stdout.readline())
    assert first["ok"] is True
    assert a.request({"cmd": "stop", "target": "x"})["ok"]
    evs = read_until(p, lambda g: sum('"to":"exited"' in l and '"agent":"x"' in l for l in g) == 1
                     and any('"agent":"y"' in l and '"to":"waiting"' in l for l in g))
    evs = [json.loads(l)["event"] for l in evs]
    xs = [(e["from"], e["to"]) for e in evs if e["agent"] == "x"]
    assert xs[:2] == [("healthy", "stopping"), ("stopping", "exited")]
    yw = [e for e in evs if e["agent"] == "y" and e["to"] == "waiting"]
    assert yw and yw[0]["waiting_for"] == "x"
    p.kill()
    p.wait()
    # the human form
    q = subprocess.Popen([AINIT, "ctl", "--socket", str(a.sock), "events"],
                         stdout=subprocess.PIPE, text=True)
    assert q.stdout.readline().split()[:3] == ["TIME", "GROUP", "AGENT"]  # subscribed
    assert a.request({"cmd": "start", "target": "x"})["ok"]
    lines = read_until(q, lambda g: any(" y " in l and "-> healthy" in l for l in g))
    assert any(" x " in l and "exited" in l and "-> starting" in l for l in lines), lines
    q.kill()
    q.wait()
    assert a.stop() == 0
