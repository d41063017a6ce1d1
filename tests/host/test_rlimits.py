"""rlimits: set on each agent (and `ainit sandbox` command) before it drops
privileges; agent > group > defaults."""
import subprocess

import pytest

from conftest import AINIT, wait_for

CONFIG = """
version: 1
defaults:
  rlimits: {nofile: 1000}
groups:
  g:
    rlimits: {core: 0, nproc: 5000}
    agents:
      a: {command: [sleep, "300"]}
      b: {command: [sleep, "300"], rlimits: {nofile: 2048, stack: unlimited}}
"""


def limits(text):
    out = {}
    for line in text.splitlines()[1:]:
        name, rest = line[:26].strip(), line[26:].split()
        out[name] = (rest[0], rest[1])
    return out


def test_agents_get_their_limits(ainit_run):
    a = ainit_run(CONFIG)
    la = limits(open(f"/proc/{a.wait_state('a', 'healthy')['pid']}/limits").read())
    assert la["Max open files"] == ("1000", "1000")      # defaults
    assert la["Max core file size"] == ("0", "0")         # group
    assert la["Max processes"] == ("5000", "5000")        # group
    lb = limits(open(f"/proc/{a.wait_state('b', 'healthy')['pid']}/limits").read())
    assert lb["Max open files"] == ("2048", "2048")       # agent over defaults
    assert lb["Max stack size"] == ("unlimited", "unlimited")
    assert lb["Max processes"] == ("5000", "5000")
    assert a.stop() == 0


def test_sandbox_command_gets_group_limits(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    r = subprocess.run([AINIT, "sandbox", "--config", str(cfg), "g", "--", "cat", "/proc/self/limits"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    l = limits(r.stdout)
    assert l["Max open files"] == ("1000", "1000")
    assert l["Max processes"] == ("5000", "5000")


def test_bad_rlimits(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("version: 1\ngroups:\n  g:\n    rlimits: {nofiles: 10, core: lots}\n"
                   "    agents: {a: {command: [\"true\"]}}\n")
    r = subprocess.run([AINIT, "check", str(cfg)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert 'unknown key "nofiles" in rlimits; did you mean "nofile"?' in r.stderr
    assert 'core: bad size "lots"' in r.stderr


def test_oci_bundle_carries_group_limits(tmp_path):
    import json
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    out = tmp_path / "bundle"
    r = subprocess.run([AINIT, "export", "oci", str(cfg), "g", "-o", str(out)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    rl = {x["type"]: (x["soft"], x["hard"])
          for x in json.loads((out / "config.json").read_text())["process"]["rlimits"]}
    assert rl == {"RLIMIT_NOFILE": (1000, 1000), "RLIMIT_CORE": (0, 0),
                  "RLIMIT_NPROC": (5000, 5000)}
