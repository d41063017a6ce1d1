"""A named volume that ainit makes on first use belongs to the group's user,
who must be able to write there (redis-server --dir /data as user agent in
the MainPC appliance); a volume that exists already keeps its owner. Run as
root, through `ainit sandbox` (the path an agent takes)."""
import os
import pwd
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AINIT = os.environ.get("AINIT") or str(ROOT / "build" / "ainit")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root")


def run(tmp: Path, user: str, vol: str, state: Path):
    cfg = tmp / "appliance.yaml"
    cfg.write_text("version: 1\ngroups:\n  g:\n    network: none\n"
                   f"    user: {user}\n    volumes: ['{vol}:/srv']\n"
                   "    agents:\n      a: {command: [/bin/true]}\n")
    return subprocess.run([AINIT, "sandbox", "--config", str(cfg), "--state-dir", str(state),
                           "g", "--", "sh", "-c", "id -u; echo w > /srv/out && echo wrote"],
                          capture_output=True, text=True, timeout=30)


def test_new_named_volume_owned_by_group_user(tmp_path):
    nobody = pwd.getpwnam("nobody")
    state = tmp_path / "state"
    r = run(tmp_path, "nobody", "data", state)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(nobody.pw_uid), "wrote"], (r.stdout, r.stderr)
    st = os.stat(state / "volumes" / "data")
    assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid)
    assert (state / "volumes" / "data" / "out").read_text() == "w\n"


def test_existing_named_volume_keeps_its_owner(tmp_path):
    state = tmp_path / "state"
    (state / "volumes" / "data").mkdir(parents=True)
    r = run(tmp_path, "nobody", "data", state)
    # root's 0755 directory: nobody may not write, and ainit changed nothing
    assert "wrote" not in r.stdout, r.stdout
    st = os.stat(state / "volumes" / "data")
    assert (st.st_uid, st.st_gid) == (0, 0)


def test_root_group_volume_stays_root(tmp_path):
    state = tmp_path / "state"
    r = run(tmp_path, "root", "data", state)
    assert r.returncode == 0 and "wrote" in r.stdout, r.stderr
    assert os.stat(state / "volumes" / "data").st_uid == 0
