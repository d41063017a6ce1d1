"""GPU passthrough without a GPU: stand-in NVIDIA nodes in a temp tree.

A temp tree gets the driver's /proc files (devices with the nvidia majors,
one information file per GPU, params) and, made with mknod as root,
character devices with the NVIDIA majors. ainit is pointed at it with
AINIT_GPU_ROOT. The tests show the node set, the device-cgroup allowance,
the library binds and the environment each kind of gpu: group gets, that a
group without gpu: gets none, what `ainit check` warns about, and that
`ainit gpu mknod` makes the nodes as nvidia-modprobe does. gpu-probe runs
here with no driver (must fail cleanly) and against a stand-in libcuda.

Env: AINIT (binary under test), BUILD (build dir, for gpu-probe).
"""
import json
import os
import signal
import socket
import stat
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pytest

from conftest import wait_for  # conftest also skips the module unless root

HERE = Path(__file__).resolve().parent
AINIT = os.environ.get("AINIT") or str(HERE.parents[1] / "build" / "ainit")
BUILD = Path(os.environ.get("BUILD") or HERE.parents[1] / "build")
PROBE = BUILD / "agents" / "gpu-probe"

UVM_MAJOR = 508
CAPS_MAJOR = 509
TRIPLET = "x86_64-linux-gnu"

PROC_DEVICES = f"""Character devices:
  1 mem
  5 /dev/tty
195 nvidia
195 nvidiactl
{UVM_MAJOR} nvidia-uvm
{CAPS_MAJOR} nvidia-caps

Block devices:
  7 loop
"""

# Two GPUs; minors deliberately against PCI bus order (index = bus order).
GPUS = {"0000:01:00.0": (1, "NVIDIA H100 80GB HBM3"), "0000:41:00.0": (0, "NVIDIA A100-SXM4-40GB")}

# The driver's files and, as on a real host, soname links to them.
LIBS = ["libcuda.so.580.65.06", "libnvidia-ml.so.580.65.06", "libnvidia-ptxjitcompiler.so.580.65.06"]
LINKS = {"libcuda.so.1": "libcuda.so.580.65.06", "libnvidia-ml.so.1": "libnvidia-ml.so.580.65.06"}


def write(path: Path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_proc(root: Path, gpus=GPUS, devices=PROC_DEVICES):
    write(root / "proc/devices", devices)
    for bus, (minor, model) in gpus.items():
        write(root / f"proc/driver/nvidia/gpus/{bus}/information",
              f"Model: \t\t {model}\nIRQ:   \t\t 120\nGPU UUID: \t GPU-{minor:08d}\n"
              f"Bus Location: \t {bus}\nDevice Minor: \t {minor}\nGPU Excluded:\t No\n")
    write(root / "proc/driver/nvidia/params",
          "ResmanDebugLevel: 4294967295\nDeviceFileUID: 0\nDeviceFileGID: 0\n"
          "DeviceFileMode: 438\nModifyDeviceFiles: 1\n")
    write(root / "proc/driver/nvidia/capabilities/mig/config",
          "DeviceFileMinor: 1\nDeviceFileMode: 256\nDeviceFileModify: 1\n")
    write(root / "proc/driver/nvidia/capabilities/mig/monitor",
          "DeviceFileMinor: 2\nDeviceFileMode: 292\nDeviceFileModify: 1\n")


def mknod(path: Path, major: int, minor: int, mode=0o666):
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, stat.S_IFCHR | mode, os.makedev(major, minor))


def make_nodes(root: Path):
    dev = root / "dev"
    mknod(dev / "nvidiactl", 195, 255)
    mknod(dev / "nvidia-modeset", 195, 254)
    mknod(dev / "nvidia-uvm", UVM_MAJOR, 0)
    mknod(dev / "nvidia-uvm-tools", UVM_MAJOR, 1)
    for minor, _ in GPUS.values():
        mknod(dev / f"nvidia{minor}", 195, minor)


def make_libs(root: Path):
    d = root / "usr/lib" / TRIPLET
    d.mkdir(parents=True, exist_ok=True)
    for name in LIBS:
        (d / name).write_text("stand-in\n")
    for name, to in LINKS.items():
        (d / name).symlink_to(to)
    (d / "libcudart.so.13").write_text("toolkit, not the driver\n")


CONFIG = textwrap.dedent("""\
    version: 1
    groups:
      gpu-all:
        gpu: all
        agents:
          a: {command: [/bin/true]}
      gpu-one:
        gpu: [1]
        agents:
          b: {command: [/bin/true]}
      gpu-count:
        gpu: {count: 1}
        agents:
          c: {command: [/bin/true]}
      plain:
        agents:
          d: {command: [/bin/true]}
      bad:
        gpu: [7]
        agents:
          e: {command: [/bin/true]}
    """)


@pytest.fixture
def tree():
    # not under /tmp: a group gets its own /tmp, and the sandbox test needs
    # the tree at the same path inside the group
    with tempfile.TemporaryDirectory(prefix="ainit-gpu-", dir="/var/tmp") as d:
        root = Path(d)
        write(root / "appliance.yaml", CONFIG)
        yield root


def ainit(root: Path, *args, check=False):
    env = dict(os.environ, AINIT_GPU_ROOT=str(root))
    p = subprocess.run([AINIT, *args], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode >= 0, f"ainit died by signal {-p.returncode}: {p.stderr}"
    if check:
        assert p.returncode == 0, p.stderr
    return p


def plan(root: Path):
    p = ainit(root, "gpu", "plan", str(root / "appliance.yaml"))
    assert p.returncode in (0, 1), p.stderr
    return json.loads(p.stdout), p.returncode


def test_plan_with_standin_nodes(tree):
    make_proc(tree)
    make_nodes(tree)
    make_libs(tree)
    out, rc = plan(tree)
    assert rc == 1  # the bad group fails; the others are unaffected
    host = out["host"]
    assert host["driver"] is True
    assert host["majors"] == {"nvidia": 195, "uvm": UVM_MAJOR, "caps": CAPS_MAJOR}
    # index = PCI bus order: index 0 is the H100 at 01:00.0 with minor 1
    assert [(g["index"], g["minor"], g["model"]) for g in host["gpus"]] == [
        (0, 1, "NVIDIA H100 80GB HBM3"), (1, 0, "NVIDIA A100-SXM4-40GB")]
    lib = f"{tree}/usr/lib/{TRIPLET}/"
    assert host["libs"] == sorted(lib + n for n in LIBS)  # the files: no links, not libcudart

    g = out["groups"]
    ctl_uvm = {("/dev/nvidiactl", 195, 255), ("/dev/nvidia-uvm", UVM_MAJOR, 0),
               ("/dev/nvidia-uvm-tools", UVM_MAJOR, 1)}

    def nodes(name):
        return {(n["path"], n["major"], n["minor"]) for n in g[name]["nodes"]}

    # gpu: all -- both GPUs, control and UVM nodes, nothing else
    a = g["gpu-all"]
    assert a["ok"] is True
    assert nodes("gpu-all") == ctl_uvm | {("/dev/nvidia1", 195, 1), ("/dev/nvidia0", 195, 0)}
    assert all(n["type"] == "c" for n in a["nodes"])
    assert {n["source"] for n in a["nodes"]} == {str(tree / "dev") + p[4:] for p, _, _ in nodes("gpu-all")}
    assert sorted(a["allow"]) == sorted(["c 195:255 rw", f"c {UVM_MAJOR}:0 rw", f"c {UVM_MAJOR}:1 rw",
                                         "c 195:1 rw", "c 195:0 rw"])
    assert a["env"] == {"CUDA_VISIBLE_DEVICES": "0,1", "NVIDIA_VISIBLE_DEVICES": "all",
                        "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}
    assert {(l["source"], l["target"], l["ro"]) for l in a["libs"]} == {
        (lib + n, lib + n, True) for n in LIBS}

    # gpu: [1] -- index 1 is the A100, node nvidia0; not the other GPU
    one = g["gpu-one"]
    assert one["ok"] is True and one["gpus"] == [1]
    assert nodes("gpu-one") == ctl_uvm | {("/dev/nvidia0", 195, 0)}
    assert "c 195:1 rw" not in one["allow"]
    assert one["env"]["CUDA_VISIBLE_DEVICES"] == "0"
    assert one["env"]["NVIDIA_VISIBLE_DEVICES"] == "1"

    # gpu: {count: 1} -- the first GPU by index
    cnt = g["gpu-count"]
    assert cnt["ok"] is True and cnt["gpus"] == [0]
    assert nodes("gpu-count") == ctl_uvm | {("/dev/nvidia1", 195, 1)}

    # no gpu: -- nothing at all
    plain = g["plain"]
    assert plain == {"gpu": "none", "ok": True, "gpus": [], "nodes": [], "allow": [],
                     "libs": [], "env": {}}

    # an index the host does not have: a clear error naming the group
    bad = g["bad"]
    assert bad["ok"] is False
    assert bad["error"] == "gpu: group bad: GPU index 7 does not exist: this host has 2 GPUs (0..1)"


def test_plan_errors(tree):
    make_proc(tree)
    make_libs(tree)
    # the driver is there but nobody made the nodes
    out, rc = plan(tree)
    assert rc == 1
    err = out["groups"]["gpu-all"]["error"]
    assert "group gpu-all: device nodes missing in" in err
    assert "nvidiactl nvidia-uvm nvidia1 nvidia0" in err
    assert out["groups"]["plain"]["ok"] is True

    # nodes, but no libcuda on the root
    make_nodes(tree)
    for n in [*LIBS, *LINKS]:
        (tree / "usr/lib" / TRIPLET / n).unlink()
    out, _ = plan(tree)
    assert "libcuda.so.1 is not on the root" in out["groups"]["gpu-one"]["error"]

    # no nvidia-uvm registered: CUDA cannot work; say which module to load
    write(tree / "proc/devices", PROC_DEVICES.replace(f"{UVM_MAJOR} nvidia-uvm\n", ""))
    out, _ = plan(tree)
    assert "nvidia_uvm is not loaded" in out["groups"]["gpu-count"]["error"]

    # no driver at all
    write(tree / "proc/devices", "Character devices:\n  1 mem\n\nBlock devices:\n")
    out, rc = plan(tree)
    assert rc == 1
    assert out["host"]["driver"] is False
    assert "no NVIDIA driver is loaded" in out["groups"]["gpu-all"]["error"]
    assert out["groups"]["plain"]["ok"] is True


def test_check_warns_for_missing_gpus(tree):
    make_proc(tree, gpus={"0000:01:00.0": (0, "NVIDIA H100 80GB HBM3")})
    p = ainit(tree, "check", str(tree / "appliance.yaml"))
    assert p.returncode == 0, p.stderr  # warnings only
    warns = [l for l in p.stderr.splitlines() if "[gpu-missing]" in l]
    assert len(warns) == 2, p.stderr
    assert any("group bad asks for GPU 7 but this host has 1 GPU (index 0..0) [gpu-missing]" in w
               for w in warns)
    assert any("group gpu-one asks for GPU 1 but this host has 1 GPU" in w for w in warns)
    assert all("appliance.yaml:" in w for w in warns)  # file:line:col

    write(tree / "proc/devices", "Character devices:\n  1 mem\n\n")
    p = ainit(tree, "check", str(tree / "appliance.yaml"))
    warns = [l for l in p.stderr.splitlines() if "[gpu-missing]" in l]
    assert {w.split("group ")[1].split(" ")[0] for w in warns} == {"gpu-all", "gpu-one", "gpu-count", "bad"}
    assert all("this host has none (no NVIDIA driver loaded)" in w for w in warns)


def test_mknod_like_nvidia_modprobe(tree):
    make_proc(tree)
    (tree / "dev").mkdir()
    # a stale regular file where a node belongs is replaced
    write(tree / "dev/nvidia0", "stale")
    old = os.umask(0o077)  # the driver's mode wins over the umask
    try:
        p = ainit(tree, "gpu", "mknod", check=True)
    finally:
        os.umask(old)
    # nvidiactl, nvidia0, nvidia1, modeset, uvm, uvm-tools, cap1, cap2
    assert "8 device nodes" in p.stdout

    def node(rel):
        st = os.stat(tree / "dev" / rel)
        assert stat.S_ISCHR(st.st_mode), rel
        return os.major(st.st_rdev), os.minor(st.st_rdev), stat.S_IMODE(st.st_mode)

    assert node("nvidiactl") == (195, 255, 0o666)
    assert node("nvidia0") == (195, 0, 0o666)
    assert node("nvidia1") == (195, 1, 0o666)
    assert node("nvidia-modeset") == (195, 254, 0o666)
    assert node("nvidia-uvm") == (UVM_MAJOR, 0, 0o666)
    assert node("nvidia-uvm-tools") == (UVM_MAJOR, 1, 0o666)
    assert node("nvidia-caps/nvidia-cap1") == (CAPS_MAJOR, 1, 0o400)
    assert node("nvidia-caps/nvidia-cap2") == (CAPS_MAJOR, 2, 0o444)

    # idempotent; a wrong minor is fixed
    os.unlink(tree / "dev/nvidia1")
    mknod(tree / "dev/nvidia1", 195, 9)
    ainit(tree, "gpu", "mknod", check=True)
    assert node("nvidia1") == (195, 1, 0o666)

    # and then the plan finds everything it needs (but libcuda)
    out, _ = plan(tree)
    assert "libcuda" in out["groups"]["gpu-all"]["error"]

    # the driver's params can forbid it (NVreg_ModifyDeviceFiles=0)
    write(tree / "proc/driver/nvidia/params", "ModifyDeviceFiles: 0\n")
    os.unlink(tree / "dev/nvidiactl")
    p = ainit(tree, "gpu", "mknod", check=True)
    assert not (tree / "dev/nvidiactl").exists()

    # no driver: a clear error, exit 1
    write(tree / "proc/devices", "Character devices:\n  1 mem\n\n")
    p = ainit(tree, "gpu", "mknod")
    assert p.returncode == 1
    assert "no NVIDIA driver loaded" in p.stderr


# ---- gpu-probe ----

def need_probe():
    if not PROBE.exists():
        pytest.skip(f"{PROBE} not built (no CUDA toolkit at /usr/local/cuda)")


def run_probe(*args, env_extra=None, libdir=None):
    env = dict(os.environ)
    # never let a host driver in: only the directory we name
    env["LD_LIBRARY_PATH"] = str(libdir) if libdir else "/nonexistent"
    env.update(env_extra or {})
    return subprocess.run([str(PROBE), *args], env=env, capture_output=True, text=True, timeout=60)


def test_probe_without_driver():
    need_probe()
    if Path("/proc/driver/nvidia").exists():
        pytest.skip("this machine has an NVIDIA driver")
    p = run_probe()
    assert p.returncode == 1, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu-probe: no usable GPU: cudaGetDeviceCount: ")
    out = json.loads(p.stdout)
    assert out["status"] == "error" and out["count"] == 0 and out["devices"] == []
    assert "cuda" in out["error"].lower()


@pytest.fixture(scope="module")
def fake_libcuda():
    with tempfile.TemporaryDirectory(prefix="ainit-libcuda-") as d:
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-Wall", "-o", f"{d}/libcuda.so.1",
                        str(HERE / "fake_libcuda.c")], check=True)
        yield Path(d)


def test_probe_old_driver_uses_driver_api(fake_libcuda):
    need_probe()
    p = run_probe(libdir=fake_libcuda)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["status"] == "ok" and out["api"] == "driver"
    assert "cudaErrorInsufficientDriver" in out["runtime_error"]
    assert out["driver_version"] == 12040 and out["count"] == 1
    d = out["devices"][0]
    assert d["name"] == "Fake GPU 12GB" and d["compute_capability"] == "8.6"
    assert d["total_memory"] == 12 << 30
    assert d["round_trip"]["ok"] is True and d["round_trip"]["bytes"] == 4 << 20

    p = run_probe(libdir=fake_libcuda, env_extra={"FAKE_CUDA_CORRUPT": "1"})
    assert p.returncode == 1
    assert p.stderr.strip() == "gpu-probe: no usable GPU: device 0: round trip: data came back different"
    out = json.loads(p.stdout)
    assert out["status"] == "error" and out["devices"][0]["round_trip"]["ok"] is False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_probe_serves_legacy_health(fake_libcuda):
    need_probe()
    zmq = pytest.importorskip("zmq")
    port = free_port()
    env = dict(os.environ, LD_LIBRARY_PATH=str(fake_libcuda), ZMQ_BIND_IP="127.0.0.1",
               HEALTH_CHECK_PORT=str(port), AINIT_AGENT="gpu-probe-test", AINIT_GROUP="gpu-infra")
    proc = subprocess.Popen([str(PROBE), "--serve"], env=env, stderr=subprocess.PIPE, text=True)
    ctx = zmq.Context()
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 10000)
    try:
        s.connect(f"tcp://127.0.0.1:{port}")
        s.send_string("health_check")
        out = json.loads(s.recv_string())
        assert out["status"] == "ok" and out["devices"][0]["name"] == "Fake GPU 12GB"
        # libagent's members, from ainit's environment
        assert out["agent"] == "gpu-probe-test" and out["group"] == "gpu-infra"
        assert out["pid"] == proc.pid and out["uptime_s"] >= 0
        s.send_string(json.dumps({"action": "health_check"}))
        assert json.loads(s.recv_string())["status"] == "ok"
        s.send_string("bogus")
        assert json.loads(s.recv_string()) == {"status": "error", "error": "unknown request"}
    finally:
        s.close()
        ctx.term()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=10)
        err = proc.stderr.read()
    assert rc == 0, err
    assert f"serving health on tcp://127.0.0.1:{port}: GPU ok" in err


def test_probe_serve_without_driver_reports_error():
    need_probe()
    zmq = pytest.importorskip("zmq")
    if Path("/proc/driver/nvidia").exists():
        pytest.skip("this machine has an NVIDIA driver")
    port = free_port()
    env = dict(os.environ, LD_LIBRARY_PATH="/nonexistent", ZMQ_BIND_IP="127.0.0.1")
    proc = subprocess.Popen([str(PROBE), "--serve", str(port)], env=env,
                            stderr=subprocess.PIPE, text=True)
    ctx = zmq.Context()
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 10000)
    try:
        s.connect(f"tcp://127.0.0.1:{port}")
        s.send_string("health_check")
        out = json.loads(s.recv_string())
        # the health check fails with the reason; the agent does not crash
        assert out["status"] == "error" and "cudaGetDeviceCount" in out["error"]
        assert proc.poll() is None
    finally:
        s.close()
        ctx.term()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


# ---- the sandbox: what a group's processes see and may open ----

INSIDE = r"""
import errno, json, os, sys
res = {"dev": sorted(n for n in os.listdir("/dev") if n.startswith("nvidia")),
       "env": {k: v for k, v in os.environ.items() if k.startswith(("CUDA_", "NVIDIA_"))},
       "open": {}, "mknod": {}, "lib_write": None}
if sys.argv[1] == "mknod":
    for name, mm in (("nvidiactl", (195, 255)), ("nvidia0", (195, 0)), ("nvidia-uvm", (%d, 0))):
        try:
            os.mknod("/dev/" + name, 0o20666, os.makedev(*mm))
            res["mknod"][name] = "ok"
        except OSError as e:
            res["mknod"][name] = errno.errorcode[e.errno]
for name in ("nvidiactl", "nvidia0", "nvidia1", "nvidia-uvm", "nvidia-uvm-tools"):
    try:
        os.close(os.open("/dev/" + name, os.O_RDWR))
        res["open"][name] = "ok"
    except OSError as e:
        res["open"][name] = errno.errorcode[e.errno]
lib = sys.argv[2]
try:
    open(lib, "a").close()
    res["lib_write"] = "ok"
except OSError as e:
    res["lib_write"] = errno.errorcode[e.errno]
res["lib"] = open(lib).read()
print(json.dumps(res))
""" % UVM_MAJOR

SANDBOX_CONFIG = textwrap.dedent("""\
    version: 1
    defaults: {user: root}
    groups:
      gpu-all:
        gpu: all
        agents: {a: {command: [/bin/true]}}
      gpu-one:
        gpu: [1]
        agents: {b: {command: [/bin/true]}}
      plain:
        capabilities: [CAP_MKNOD]
        agents: {c: {command: [/bin/true]}}
    """)


def sandbox(root: Path, group: str, mode: str):
    lib = f"{root}/usr/lib/{TRIPLET}/libcuda.so.1"
    p = ainit(root, "sandbox", "--config", str(root / "sandbox.yaml"), group, "--",
              "/usr/bin/python3", "-c", INSIDE, mode, lib)
    if p.returncode == 125 and "unknown command" in p.stderr:
        pytest.skip("this ainit has no sandbox command")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1]), p.stderr


def test_sandbox_gpu_group_and_plain_group(tree):
    make_proc(tree)
    make_nodes(tree)
    make_libs(tree)
    write(tree / "sandbox.yaml", SANDBOX_CONFIG)

    plain, err = sandbox(tree, "plain", "mknod")
    assert plain["dev"] == [] and plain["env"] == {}
    assert plain["mknod"] == {"nvidiactl": "ok", "nvidia0": "ok", "nvidia-uvm": "ok"}
    if plain["open"]["nvidiactl"] == "ENXIO":
        # the open reached the (absent) driver: no device program stopped it
        pytest.skip("no BPF_CGROUP_DEVICE program could be attached here "
                    f"(cgroup v2 unusable for devices on this host): {err.strip()}")
    # root with CAP_MKNOD made the nodes, the device program refuses them
    assert plain["open"] == {"nvidiactl": "EPERM", "nvidia0": "EPERM", "nvidia1": "ENOENT",
                             "nvidia-uvm": "EPERM", "nvidia-uvm-tools": "ENOENT"}

    allg, _ = sandbox(tree, "gpu-all", "look")
    assert allg["dev"] == ["nvidia-uvm", "nvidia-uvm-tools", "nvidia0", "nvidia1", "nvidiactl"]
    assert allg["env"] == {"CUDA_VISIBLE_DEVICES": "0,1", "NVIDIA_VISIBLE_DEVICES": "all",
                           "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}
    # allowed by the device program: the open reaches the driver, which is
    # not there (stand-in nodes), hence ENXIO and not EPERM
    assert allg["open"] == {n: "ENXIO" for n in
                            ("nvidiactl", "nvidia0", "nvidia1", "nvidia-uvm", "nvidia-uvm-tools")}
    # the driver's library is there, through its soname link, read-only
    assert allg["lib"] == "stand-in\n" and allg["lib_write"] == "EROFS"

    one, _ = sandbox(tree, "gpu-one", "mknod")
    # index 1 = the A100, minor 0; the other GPU's node is neither there nor
    # openable after mknod
    assert one["dev"] == ["nvidia-uvm", "nvidia-uvm-tools", "nvidia0", "nvidiactl"]
    assert one["env"]["CUDA_VISIBLE_DEVICES"] == "0" and one["env"]["NVIDIA_VISIBLE_DEVICES"] == "1"
    assert one["open"]["nvidia0"] == "ENXIO" and one["open"]["nvidia1"] == "ENOENT"


def test_sandbox_gpu_group_errors_leave_others_alone(tree):
    make_proc(tree)
    make_libs(tree)  # no nodes made
    write(tree / "sandbox.yaml", SANDBOX_CONFIG)
    p = ainit(tree, "sandbox", "--config", str(tree / "sandbox.yaml"), "gpu-all", "--", "/bin/true")
    if p.returncode == 125 and "unknown command" in p.stderr:
        pytest.skip("this ainit has no sandbox command")
    assert p.returncode == 125
    assert "group gpu-all: device nodes missing" in p.stderr
    plain, _ = sandbox(tree, "plain", "look")
    assert plain["dev"] == [] and plain["lib"] == "stand-in\n"


def test_run_sandboxed_groups(tree, ainit_run):
    """The supervisor's own path: `ainit run --sandbox` builds each group's
    sandbox with its GPU plan and gives its agents the GPU environment."""
    make_proc(tree)
    make_nodes(tree)
    make_libs(tree)
    (tree / "inside.py").write_text(INSIDE)
    lib = f"{tree}/usr/lib/{TRIPLET}/libcuda.so.1"
    cmd = lambda mode: f"[/usr/bin/python3, {tree}/inside.py, {mode}, {lib}]"
    config = textwrap.dedent(f"""\
        version: 1
        defaults: {{user: root, restart: {{policy: "no"}}}}
        groups:
          gpu-all:
            gpu: all
            agents:
              gpu-look: {{command: {cmd("look")}}}
              gpu-own-env:
                command: {cmd("look")}
                environment: {{CUDA_VISIBLE_DEVICES: "1"}}
          plain:
            capabilities: [CAP_MKNOD]
            agents:
              plain-look: {{command: {cmd("mknod")}}}
        """)
    a = ainit_run(config, extra_args=["--sandbox"], env=dict(os.environ, AINIT_GPU_ROOT=str(tree)))

    def seen(agent):
        def get():
            out = a.ctl("logs", agent).stdout
            js = [l[l.index("{"):] for l in out.splitlines() if '"dev"' in l]
            return json.loads(js[-1]) if js else None
        return wait_for(get, timeout=20, what=f"{agent}'s report\n{a.logtext()}")

    g = seen("gpu-look")
    assert g["dev"] == ["nvidia-uvm", "nvidia-uvm-tools", "nvidia0", "nvidia1", "nvidiactl"]
    assert g["env"] == {"CUDA_VISIBLE_DEVICES": "0,1", "NVIDIA_VISIBLE_DEVICES": "all",
                        "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}
    assert set(g["open"].values()) == {"ENXIO"}
    assert g["lib_write"] == "EROFS"
    # an agent's own value wins over the plan's
    assert seen("gpu-own-env")["env"]["CUDA_VISIBLE_DEVICES"] == "1"
    p = seen("plain-look")
    assert p["dev"] == [] and p["env"] == {}
    assert p["mknod"] == {"nvidiactl": "ok", "nvidia0": "ok", "nvidia-uvm": "ok"}
    if p["open"]["nvidiactl"] == "ENXIO":
        pytest.skip("no BPF_CGROUP_DEVICE program could be attached here")
    assert p["open"]["nvidiactl"] == "EPERM" and p["open"]["nvidia0"] == "EPERM"
    a.stop()


def test_export_oci_for_runc(tree):
    """runtime: runc groups get the same through their OCI config."""
    make_proc(tree)
    make_nodes(tree)
    make_libs(tree)

    def export(group):
        out = tree / f"oci-{group}"
        p = ainit(tree, "export", "oci", str(tree / "appliance.yaml"), group, "-o", str(out))
        return p, (json.loads((out / "config.json").read_text()) if p.returncode == 0 else None)

    p, doc = export("gpu-one")
    assert p.returncode == 0, p.stderr
    devs = {(d["path"], d["type"], d["major"], d["minor"]) for d in doc["linux"]["devices"]}
    assert devs == {("/dev/nvidiactl", "c", 195, 255), ("/dev/nvidia-uvm", "c", UVM_MAJOR, 0),
                    ("/dev/nvidia-uvm-tools", "c", UVM_MAJOR, 1), ("/dev/nvidia0", "c", 195, 0)}
    rules = [r for r in doc["linux"]["resources"]["devices"] if r.get("major") in (195, UVM_MAJOR)]
    assert {(r["major"], r["minor"], r["access"], r["allow"]) for r in rules} == {
        (195, 255, "rw", True), (UVM_MAJOR, 0, "rw", True), (UVM_MAJOR, 1, "rw", True),
        (195, 0, "rw", True)}
    env = doc["process"]["env"]
    assert "CUDA_VISIBLE_DEVICES=0" in env and "NVIDIA_VISIBLE_DEVICES=1" in env
    lib = f"{tree}/usr/lib/{TRIPLET}/"
    binds = {(m["destination"], m["source"]) for m in doc["mounts"] if "ro" in m.get("options", [])
             and m["source"].startswith(lib)}
    assert binds == {(lib + n, lib + n) for n in LIBS}

    p, doc = export("plain")
    assert p.returncode == 0, p.stderr
    assert "devices" not in doc["linux"]
    assert not any(r.get("major") in (195, UVM_MAJOR) for r in doc["linux"]["resources"]["devices"])
    assert not any(e.startswith(("CUDA_", "NVIDIA_")) for e in doc["process"]["env"])

    p, _ = export("bad")
    assert p.returncode == 1
    assert "gpu: group bad: GPU index 7 does not exist" in p.stderr
