"""The per-group sandbox, seen from inside, through `ainit sandbox` (the same
path an agent takes). Run as root. Each test writes its own config into a
temp dir; nothing global is touched but cgroups under ainit's own, which
ainit removes."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AINIT = os.environ.get("AINIT") or str(ROOT / "build" / "ainit")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root")

MINIMAL_DEV = {"fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin",
               "stdout", "tty", "urandom", "zero"}

# x86_64 syscall numbers for the seccomp checks (ctypes inside the sandbox).
NR = {"add_key": 248, "keyctl": 250, "unshare": 272, "mount": 165}


def config(tmp: Path, groups: str, extra: str = "") -> Path:
    p = tmp / "appliance.yaml"
    p.write_text("version: 1\n" + extra + "groups:\n" + groups)
    return p


def sandbox(cfg: Path, group: str, *cmd, inp=None, args=(), timeout=30):
    return subprocess.run([AINIT, "sandbox", "--config", str(cfg), *args, group, "--", *cmd],
                          input=inp, capture_output=True, text=True, timeout=timeout)


def status(out: str) -> dict:
    return {k: v.strip() for k, v in (l.split(":", 1) for l in out.splitlines() if ":" in l)}


def group(name, agent, body=""):
    return (f"  {name}:\n{body}"
            f"    agents:\n      {agent}: {{command: [/bin/true]}}\n")


@pytest.fixture
def cfg(tmp_path):
    return config(tmp_path,
                  group("plain", "p1", "    network: none\n") +
                  group("bind", "b1", "    network: none\n"
                        "    capabilities: [CAP_NET_BIND_SERVICE]\n") +
                  group("admin", "a1", "    network: none\n"
                        "    capabilities: [CAP_SYS_ADMIN]\n") +
                  group("adminfree", "a2", "    network: none\n    seccomp: unconfined\n"
                        "    capabilities: [CAP_SYS_ADMIN]\n") +
                  group("nobody", "n1", "    network: none\n    user: nobody\n") +
                  group("hostnet", "h1", "    network: host\n") +
                  group("mknod", "m1", "    network: none\n    capabilities: [CAP_MKNOD]\n"))


def test_proc_status_default(cfg):
    r = sandbox(cfg, "plain", "cat", "/proc/self/status")
    assert r.returncode == 0, r.stderr
    s = status(r.stdout)
    assert s["CapEff"] == "0000000000000000"
    assert s["CapPrm"] == "0000000000000000"
    assert s["CapBnd"] == "0000000000000000"
    assert s["CapInh"] == "0000000000000000"
    assert s["CapAmb"] == "0000000000000000"
    assert s["NoNewPrivs"] == "1"
    assert s["Seccomp"] == "2"
    assert s["Uid"].split() == ["0", "0", "0", "0"]


def test_exactly_net_bind_service_for_root(cfg):
    r = sandbox(cfg, "bind", "cat", "/proc/self/status")
    assert r.returncode == 0, r.stderr
    s = status(r.stdout)
    for k in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"):
        assert s[k] == "0000000000000400", (k, s[k])
    assert s["Uid"].split()[0] == "0"


def test_user_from_group_root_passwd(cfg):
    r = sandbox(cfg, "nobody", "sh", "-c", "cat /proc/self/status; id -u; id -g; echo HOME=$HOME")
    assert r.returncode == 0, r.stderr
    s = status(r.stdout)
    assert s["Uid"].split() == ["65534"] * 4
    assert s["CapEff"] == "0000000000000000" and s["CapAmb"] == "0000000000000000"
    assert "HOME=/nonexistent" in r.stdout


def test_root_is_read_only(cfg):
    r = sandbox(cfg, "plain", "sh", "-c", "touch /ainit-should-not-exist; echo rc=$?")
    assert "rc=0" not in r.stdout
    assert "Read-only file system" in r.stderr
    assert not Path("/ainit-should-not-exist").exists()
    # /tmp and /run are the sandbox's own tmpfs, writable and empty.
    r = sandbox(cfg, "plain", "sh", "-c", "ls -A /tmp | wc -l; touch /tmp/x /run/y && echo ok")
    assert r.stdout.split() == ["0", "ok"], r.stderr


def test_network_none_only_lo(cfg):
    r = sandbox(cfg, "plain", "ls", "/sys/class/net")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["lo"]
    r = sandbox(cfg, "plain", "cat", "/sys/class/net/lo/operstate", "/sys/class/net/lo/flags")
    assert int(r.stdout.split()[1], 16) & 1, "lo is up"
    # network: host sees the host's interfaces.
    host = sorted(os.listdir("/sys/class/net"))
    r = sandbox(cfg, "hostnet", "ls", "/sys/class/net")
    assert sorted(r.stdout.split()) == host


def test_only_sandbox_processes_in_proc(cfg):
    r = sandbox(cfg, "plain", "sh", "-c", "cd /proc; for p in [0-9]*; do cat $p/comm; done")
    assert r.returncode == 0, r.stderr
    comms = r.stdout.split()
    # PID 1 is the group's holder; then the shell and its cat.
    assert set(comms) <= {"ainit-holder", "sh", "cat"}, comms
    assert "ainit-holder" in comms
    r = sandbox(cfg, "plain", "sh", "-c", "echo $$; cat /proc/1/comm")
    pid, comm1 = r.stdout.split()
    assert int(pid) < 10 and comm1 == "ainit-holder"


def test_own_hostname(cfg):
    r = sandbox(cfg, "plain", "hostname")
    assert r.stdout.strip() == "plain"
    r = sandbox(cfg, "bind", "cat", "/proc/sys/kernel/hostname")
    assert r.stdout.strip() == "bind"
    assert os.uname().nodename not in ("plain", "bind")


def test_dev_is_minimal(cfg):
    r = sandbox(cfg, "plain", "ls", "-A", "/dev")
    assert r.returncode == 0, r.stderr
    assert set(r.stdout.split()) == MINIMAL_DEV
    r = sandbox(cfg, "plain", "sh", "-c",
                "head -c 4 /dev/urandom | wc -c; echo x > /dev/null && echo null-ok")
    assert r.stdout.split() == ["4", "null-ok"], r.stderr


def seccomp_probe(cfg, grp):
    code = ("import ctypes, os, sys\n"
            "l = ctypes.CDLL(None, use_errno=True)\n"
            f"NR = {NR!r}\n"
            "def call(name, *a):\n"
            "    ctypes.set_errno(0)\n"
            "    r = l.syscall(NR[name], *a)\n"
            "    e = ctypes.get_errno()\n"
            "    print(name, r, os.strerror(e) if r < 0 else 'ok')\n"
            "call('add_key', b'user', b'ainit-test', b'x', 1, ctypes.c_long(-3))\n"
            "call('keyctl', 0, ctypes.c_long(-3), 0)\n"  # KEYCTL_GET_KEYRING_ID
            "call('unshare', 0x00020000)\n"  # CLONE_NEWNS
            "call('mount', b'none', b'/tmp', b'tmpfs', 0, None)\n")
    r = sandbox(cfg, grp, "python3", "-c", code)
    assert r.returncode == 0, r.stderr
    return {l.split()[0]: l.split(None, 2)[2] for l in r.stdout.splitlines()}


def test_default_seccomp_denies_with_eperm(cfg):
    # With CAP_SYS_ADMIN, only the filter can refuse unshare and mount.
    res = seccomp_probe(cfg, "admin")
    for name in NR:
        assert res[name] == "Operation not permitted", (name, res)
    # Control: the same group without the filter can make these calls, so
    # the EPERM above is the filter's.
    free = seccomp_probe(cfg, "adminfree")
    assert free["keyctl"] == "ok" and free["unshare"] == "ok" and free["mount"] == "ok", free


def test_exit_status_passes_through(cfg):
    assert sandbox(cfg, "plain", "sh", "-c", "exit 42").returncode == 42
    assert sandbox(cfg, "plain", "true").returncode == 0
    assert sandbox(cfg, "plain", "sh", "-c", "kill -9 $$").returncode == 128 + 9
    assert sandbox(cfg, "plain", "sh", "-c", "kill -TERM $$").returncode == 128 + 15


def test_stdio_passes_through(cfg):
    r = sandbox(cfg, "plain", "sh", "-c", "cat; echo err >&2", inp="hello\n")
    assert r.stdout == "hello\n" and r.stderr == "err\n"


def test_device_not_granted_cannot_be_opened_after_mknod(cfg):
    # The group's BPF_CGROUP_DEVICE program allows mknod of anything but
    # opening only the minimal set (and the group's devices). /dev is the
    # one tmpfs without nodev, so the node is made there.
    r = sandbox(cfg, "mknod", "sh", "-c",
                "mknod /dev/kmsg2 c 1 11 && echo made; cat /dev/kmsg2; echo rc=$?; "
                "mknod /dev/null2 c 1 3 && echo hi > /dev/null2 && echo null-ok")
    assert "made" in r.stdout, r.stderr
    assert "rc=0" not in r.stdout
    assert "Operation not permitted" in r.stderr
    assert "null-ok" in r.stdout


def test_volumes(tmp_path):
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "f").write_text("from-host\n")
    state = tmp_path / "state"
    cfg = config(tmp_path, group("v", "v1", f"    network: none\n"
                                 f"    volumes: ['{host}:/mnt:ro', 'data:/srv']\n"))
    r = sandbox(cfg, "v", "sh", "-c", "cat /mnt/f; touch /mnt/g; echo w > /srv/out && echo ok",
                args=("--state-dir", str(state)))
    assert "from-host" in r.stdout and "ok" in r.stdout, r.stderr
    assert "Read-only file system" in r.stderr
    assert not (host / "g").exists()
    assert (state / "volumes" / "data" / "out").read_text() == "w\n"


def test_busybox_root(tmp_path):
    bb = shutil.which("busybox")
    if not bb:
        pytest.skip("busybox missing (mk/deps.sh installs busybox-static)")
    root = tmp_path / "rootfs"
    for d in ("bin", "etc", "tmp", "run", "dev", "proc", "sys"):
        (root / d).mkdir(parents=True)
    shutil.copy(bb, root / "bin" / "busybox")
    for x in ("sh", "cat", "ls", "id"):
        (root / "bin" / x).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\nsvc:x:4242:4343::/:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nsvc:x:4343:\nextra:x:777:svc\n")
    cfg = config(tmp_path, group("bb", "bb1", "    network: none\n    user: svc\n"))
    r = sandbox(cfg, "bb", "sh", "-c", "id -u; id -g; id -G; ls /bin | wc -l",
                args=("--root", str(root)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["4242", "4343", "4343", "777", "5"]


@pytest.mark.parametrize("body,code,needle", [
    ("    user: no-such-user\n", 125, 'user "no-such-user" not found'),
    ("    volumes: ['/nonexistent/ainit-vol:/mnt']\n", 125, "/nonexistent/ainit-vol"),
    ("    capabilities: [CAP_FLY]\n", 125, 'unknown capability "CAP_FLY"'),
    ("    seccomp: no-such-profile\n", 125, 'unknown seccomp profile "no-such-profile"'),
])
def test_bad_input_is_125(tmp_path, body, code, needle):
    cfg = config(tmp_path, group("bad", "x1", body))
    r = sandbox(cfg, "bad", "true")
    assert r.returncode == code, (r.returncode, r.stderr)
    assert needle in r.stderr and "group bad" in r.stderr, r.stderr


def test_not_executable_126_not_found_127(cfg, tmp_path):
    r = sandbox(cfg, "plain", "/etc/passwd")
    assert r.returncode == 126 and "Permission denied" in r.stderr, r.stderr
    r = sandbox(cfg, "plain", "/no/such/program")
    assert r.returncode == 127 and "No such file" in r.stderr, r.stderr
    r = sandbox(cfg, "no-such-group", "true")
    assert r.returncode == 125 and "no such group" in r.stderr


def test_named_profile_and_file_line_errors(tmp_path):
    sdir = tmp_path / "seccomp"
    sdir.mkdir()
    (sdir / "nouname.policy").write_text("# everything but uname\n@default allow\n"
                                         "uname: errno EACCES\n")
    (sdir / "broken.policy").write_text("read\nwrite\nnot_a_syscall\n")
    cfg = config(tmp_path, group("n", "n1", "    network: none\n    seccomp: nouname\n") +
                 group("b", "b1", "    seccomp: broken\n"))
    r = sandbox(cfg, "n", "python3", "-c", "import os\ntry:\n os.uname()\nexcept OSError as e:\n"
                " print(e.errno)")
    assert r.stdout.strip() == "13", r.stderr  # EACCES
    r = sandbox(cfg, "b", "true")
    assert r.returncode == 125
    assert re.search(r"broken\.policy:3: unknown system call \"not_a_syscall\"", r.stderr), r.stderr


def test_cgroup_and_missing_controllers_said_once(tmp_path):
    cfg = config(tmp_path, group("lim", "l1", "    network: none\n"
                                 "    resources: {memory: 64MiB, pids: 64, cpus: 0.5}\n"))
    r = sandbox(cfg, "lim", "cat", "/proc/self/cgroup")
    assert r.returncode == 0, r.stderr
    line = [l for l in r.stdout.splitlines() if l.startswith("0::")][0]
    # In its own cgroup namespace the group's cgroup is the root; each
    # agent (here the command) lives in its own leaf under it.
    assert line == "0::/agent.sandbox"
    own = Path("/sys/fs/cgroup/unified/cgroup.controllers")
    ctl = own.read_text().split() if own.exists() else None
    if ctl is not None and "memory" not in ctl:
        assert r.stderr.count("no memory controller") == 1, r.stderr
    # ainit removed its cgroups.
    leftovers = [p for p in Path("/sys/fs/cgroup/unified").glob("ainit-sandbox.*")
                 if (p / "lim").exists()] if Path("/sys/fs/cgroup/unified").exists() else []
    assert not leftovers


def test_bridge_network(tmp_path):
    if not shutil.which("ip") or not shutil.which("unshare"):
        pytest.skip("needs ip and unshare")
    # Connectivity: a TCP connect to a closed port on the bridge address is
    # refused (RST) only if packets get there and back.
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "probe.py").write_text(
        "import socket\ns = socket.socket()\ns.settimeout(3)\n"
        "try:\n    s.connect(('10.231.7.1', 9))\nexcept ConnectionRefusedError:\n"
        "    print('reach-ok')\nexcept OSError as e:\n    print('reach-fail', e)\n")
    cfg = config(tmp_path, group("br", "br1", f"    network: bridge\n    volumes: ['{probe}:/mnt:ro']\n"),
                 extra="appliance:\n  network:\n    bridge: {name: aitest0, subnet: 10.231.7.0/24}\n")
    # In a network namespace of the test's own: the bridge and veth never
    # touch the host's namespace.
    inner = ("cat /sys/class/net/eth0/operstate; ip -4 -o addr show eth0; ip route; "
             "python3 /mnt/probe.py")
    r = subprocess.run(["unshare", "-n", "--", "sh", "-c", 'ip link set lo up; exec "$0" "$@"',
                        AINIT, "sandbox", "--config", str(cfg), "br", "--", "sh", "-c", inner],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "10.231.7.2/24" in r.stdout
    assert "default via 10.231.7.1" in r.stdout
    assert "reach-ok" in r.stdout, r.stdout


def test_runc_backend_same_properties(tmp_path):
    if not shutil.which("runc"):
        pytest.skip("runc missing (mk/deps.sh installs it)")
    cfg = config(tmp_path, group("rc", "rc1", "    runtime: runc\n    network: none\n"
                                 "    capabilities: [CAP_NET_BIND_SERVICE]\n"))
    r = sandbox(cfg, "rc", "sh", "-c", "cat /proc/self/status; hostname; ls /sys/class/net; "
                "ls -A /dev; touch /x 2>/dev/null || echo ro; exit 7")
    assert r.returncode == 7, r.stderr
    s = status(r.stdout)
    for k in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"):
        assert s[k] == "0000000000000400", (k, s[k])
    assert s["NoNewPrivs"] == "1" and s["Seccomp"] == "2"
    words = r.stdout.split()
    assert "rc" in words and "lo" in words and "ro" in words
    assert MINIMAL_DEV - {"fd", "stdin", "stdout", "stderr", "ptmx"} <= set(words)


def test_export_oci(tmp_path):
    cfg = config(tmp_path, group("ex", "ex1", "    network: none\n"))
    out = tmp_path / "bundle"
    r = subprocess.run([AINIT, "export", "oci", str(cfg), "ex", "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    import json
    c = json.loads((out / "config.json").read_text())
    assert c["hostname"] == "ex" and c["root"]["readonly"] is True
    assert c["process"]["args"] == ["/bin/true"]
    assert c["process"]["capabilities"]["bounding"] == []
    assert {n["type"] for n in c["linux"]["namespaces"]} == {"pid", "ipc", "uts", "mount",
                                                               "cgroup", "network"}


def test_check_reports_sandbox_mistakes_with_positions(tmp_path):
    sdir = tmp_path / "seccomp"
    sdir.mkdir()
    (sdir / "broken.policy").write_text("read\nwrite\nbogus_call\n")
    cfg = config(tmp_path, group("g", "g1", "    user: root\n"
                                 "    capabilities: [CAP_NET_BIND_SERVICE, CAP_FLY]\n"
                                 "    seccomp: broken\n") +
                 group("h", "h1", "    user: root\n    network: bridge\n"))
    r = subprocess.run([AINIT, "check", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    assert re.search(r"appliance\.yaml:\d+:\d+: error: group g: unknown capability \"CAP_FLY\"",
                     r.stderr), r.stderr
    assert re.search(r"broken\.policy:3: unknown system call \"bogus_call\"", r.stderr), r.stderr
    assert "group h: network: bridge needs appliance.network.bridge" in r.stderr
