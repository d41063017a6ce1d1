"""`ainit run` refuses bad configs with a located error and never crashes
(this tier runs the ASan/UBSan build, so a memory error fails the test)."""
import re
import subprocess

import pytest

from conftest import AINIT

GOOD_HEAD = "version: 1\ngroups:\n  g:\n    agents:\n"

CASES = {
    "truncated": (GOOD_HEAD + "      a: {command: [sleep, \"1\"", r":\d+:\d+: error: YAML syntax"),
    "nul": (GOOD_HEAD.encode() + b"      a: {command: [sl\x00eep]}\n", r"error: "),
    "wrong_type_groups": ("version: 1\ngroups: [a, b]\n", r":2:9: error: groups must be a mapping"),
    "wrong_type_command": (GOOD_HEAD + "      a: {command: {x: 1}}\n", r":5:\d+: error: command must be a list"),
    "alias": ("version: 1\nx: &a {command: [true]}\ngroups: {g: {agents: {a: *a}}}\n",
              r"error: YAML anchors"),
    "merge_key": (GOOD_HEAD + "      a: {<<: {command: [true]}}\n", r"error: YAML merge keys"),
    "huge_number": (GOOD_HEAD + "      a: {command: [true], restart: {burst: 99999999999999999999999}}\n",
                    r"error: restart.burst .* out of range"),
    "negative": (GOOD_HEAD + "      a: {command: [true], port: -5}\n", r"error: port -5 is out of range"),
    "bad_duration": (GOOD_HEAD + "      a: {command: [true], stop: {timeout: soon}}\n",
                     r":5:\d+: error: stop.timeout: bad duration"),
    "empty": ("", r"error: the file is empty"),
    "no_version": ("groups: {}\n", r"error: missing \"version: 1\""),
    "version_2": ("version: 2\ngroups: {}\n", r"error: unsupported schema version 2"),
    "invalid_utf8": (GOOD_HEAD.encode() + b"      a: {command: [\xff\xfe]}\n", r"error: "),
    "deep": ("version: 1\ngroups: " + "[" * 200 + "]" * 200 + "\n", r"error: "),
    "tags": (GOOD_HEAD + "      a: {command: !!binary aGVsbG8=}\n", r"error: YAML tags \(tag:yaml.org,2002:binary\) are not supported"),
    "empty_command": (GOOD_HEAD + "      a: {command: []}\n", r"error: command must not be empty"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_config(tmp_path, name):
    text, pattern = CASES[name]
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(text.encode() if isinstance(text, str) else text)
    r = subprocess.run([AINIT, "run", "--config", str(cfg), "--state-dir", str(tmp_path / "s")],
                       capture_output=True, timeout=20)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 1, err
    assert "Sanitizer" not in err and "runtime error" not in err, err
    assert re.search(pattern, err), err
    assert str(cfg) in err  # the diagnostic names the file
    assert not (tmp_path / "s" / "ctl.sock").exists()


def test_missing_env_var(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(GOOD_HEAD + "      a: {command: [\"${AINIT_TEST_UNSET_VAR}\"]}\n")
    r = subprocess.run([AINIT, "run", "--config", str(cfg), "--state-dir", str(tmp_path / "s")],
                       capture_output=True, text=True, timeout=20, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 1
    assert "AINIT_TEST_UNSET_VAR is not set and has no default" in r.stderr


def test_env_default_used(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(GOOD_HEAD + "      a: {command: [\"${AINIT_TEST_UNSET_VAR:-sleep}\", \"1\"]}\n")
    r = subprocess.run([AINIT, "check", str(cfg)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
