"""Appliance tier: `ainit ctl reload` reaches PID 1 over the control channel.
PID 1 re-reads /etc/ainit/appliance.yaml and appliance.d (unchanged here: the
image is read-only from the host) and, with every group in its sandbox,
swaps its tables without touching a single agent."""

import os

import pytest

from conftest import BUILD, RUNNING, Guest, need


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    img = os.path.join(BUILD, "demo")
    need(os.path.join(img, "initramfs"), "demo image (make image)")
    g = Guest(img, tmp_path_factory.mktemp("demo-reload"))
    yield g
    g.kill()


def by_name(doc):
    return {a["name"]: a for a in doc.get("agents", [])}


def test_pid1_reload_of_the_same_config_touches_nothing(demo):
    steady = ("clock", "heartbeat", "worker")
    doc = demo.wait_status(lambda d: all(by_name(d).get(n, {}).get("state") in RUNNING
                                         for n in steady), "the demo agents to run")
    before = by_name(doc)
    r = demo.ctl("--json", "reload")
    assert r.returncode == 0, r.stderr
    import json
    reply = json.loads(r.stdout)
    assert reply["ok"] and reply["unchanged"] == len(before), reply
    assert not reply["added"] and not reply["removed"] and not reply["restarted"], reply
    assert not reply["rebuilt_groups"] and not reply["needs_reboot"], reply
    doc = demo.wait_status(lambda d: not d["reloading"], "the reload to be applied")
    after = by_name(doc)
    assert set(after) == set(before)
    for n in steady:
        assert after[n]["pid"] == before[n]["pid"] and after[n]["restarts"] == 0, after[n]
    # the crasher's counters survive too, and it goes on being restarted
    assert after["crasher"]["restarts"] >= before["crasher"]["restarts"]
    demo.wait_status(lambda d: by_name(d)["crasher"]["restarts"] > after["crasher"]["restarts"],
                     "the crasher to be restarted after the reload", timeout=60)
    # the human table
    t = demo.ctl("reload")
    assert t.returncode == 0 and "nothing to restart" in t.stdout, t
    demo.wait_status(lambda d: not d["reloading"], "the second reload to be applied")
    assert by_name(demo.status()[1])["worker"]["pid"] == before["worker"]["pid"]
