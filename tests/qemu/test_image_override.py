"""image/build --override, without booting: the override is installed under
/etc/ainit/appliance.d in command-line order, and the merged config (not the
base config alone) decides what the image carries: the reference agents
from build/agents at /usr/libexec/ainit with libzmq, the users and admin
group it names, and the directories its volumes are mounted on."""

import os
import textwrap

from conftest import AINIT, BUILD, build_image, need

BASE = textwrap.dedent("""\
    version: 1
    appliance:
      hostname: ov
      ctl: {admin_group: "${ADMIN:-operators}"}
    defaults: {user: "${AINIT_USER:-agent}"}
    volumes: {state: {}}
    groups:
      app:
        volumes: ["state:/var/lib/app", "/tmp:/mnt/hosttmp"]
        agents:
          legacy: {command: [python3, /opt/ai/legacy.py]}
          other: {command: [sleep, "1000"]}
    """)

OVERRIDE1 = textwrap.dedent("""\
    groups:
      app:
        agents:
          legacy: {command: [/usr/libexec/ainit/stub-agent], working_dir: /}
    """)

OVERRIDE2 = textwrap.dedent("""\
    groups:
      app:
        user: svc
        agents:
          other: {user: "1234:1234"}
    """)


def test_override_decides_what_is_carried(tmp_path):
    need(os.path.join(BUILD, "agents", "stub-agent"), "stub-agent (make)")
    base, o1, o2 = tmp_path / "base.yaml", tmp_path / "stub.yaml", tmp_path / "users.yml"
    base.write_text(BASE)
    o1.write_text(OVERRIDE1)
    o2.write_text(OVERRIDE2)
    out = build_image(str(base), str(tmp_path / "img"),
                      extra=("--override", str(o1), "--override", str(o2),
                             "--agents-dir", os.path.join(os.path.dirname(AINIT), "agents")))
    root = os.path.join(out, "root")

    d = os.path.join(root, "etc", "ainit", "appliance.d")
    assert sorted(os.listdir(d)) == ["10-stub.yaml", "20-users.yaml"]
    with open(os.path.join(d, "10-stub.yaml")) as f:
        assert f.read() == OVERRIDE1

    # The stub replaced python3: the stub and libzmq are in, python is not.
    assert os.access(os.path.join(root, "usr/libexec/ainit/stub-agent"), os.X_OK)
    with open(os.path.join(out, "manifest.txt")) as f:
        manifest = f.read()
    assert "libzmq.so.5" in manifest
    assert "python3" not in manifest, manifest

    # Users: agent stays, svc (from the second override) is added with a
    # group of its own; numeric ids need no entry; the admin group's
    # ${...:-default} is taken at its default.
    with open(os.path.join(root, "etc/passwd")) as f:
        pw = {l.split(":")[0]: l.split(":") for l in f.read().splitlines()}
    with open(os.path.join(root, "etc/group")) as f:
        gr = {l.split(":")[0]: l.split(":") for l in f.read().splitlines()}
    assert {"root", "agent", "nobody", "svc"} <= set(pw)
    assert pw["svc"][2] == pw["svc"][3] == gr["svc"][2]
    assert int(pw["svc"][2]) not in (0, 1000, 65534)
    assert pw["svc"][5] == "/home/svc" and os.path.isdir(os.path.join(root, "home/svc"))
    assert "operators" in gr and "ainit" in gr
    assert not any("1234" in k for k in pw)

    # Volume targets exist in the image (a group root is a read-only clone).
    assert os.path.isdir(os.path.join(root, "var/lib/app"))
    assert os.path.isdir(os.path.join(root, "mnt/hosttmp"))
