#!/usr/bin/python3
"""Boot to all-healthy of the MainPC appliance (stub agents, real redis and
nats; build/mainpc from `make mainpc`) against an anchor measured in the same
run: the same kernel, QEMU machine, accelerator, memory, vCPUs and NIC
booting a bare initramfs whose /init (a static C program) powers off at once.
DESIGN 11 target: ratio <= 1.5.

  anchor   QEMU started -> QEMU exited after the bare /init's reboot(POWER_OFF)
           (kernel boot + poweroff; the host's clock)
  mainpc   QEMU started -> the first `ainit ctl status` in which all 61 agents
           are healthy (the host's clock; polled every 50 ms), and the same in
           the guest's clock (status clock_ms: when the last agent became
           healthy, ms since the guest kernel started)

  flat     the same image with one more override that empties every
           depends_on: all 63 processes start at once, no ordering; what the
           same work costs in this guest without the dependency graph (the
           floor the ordered boot can approach), host and guest clock

Rounds alternate anchor, mainpc and flat; medians are printed with every sample.
Run from the tree:  bench/boot.py [--rounds 3] [--ainit build/ainit] [--image build/mainpc]
No assertions: figures and the ratio are printed.
"""
import argparse
import importlib.machinery
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QEMU = os.path.join(ROOT, "image", "qemu")

POWEROFF_C = r"""
#include <sys/reboot.h>
#include <unistd.h>
int main(void)
{
	write(1, "bare: poweroff\n", 15);
	reboot(RB_POWER_OFF);
	return 1;
}
"""


def image_build_module():
    """image/build's cpio writer and compressor (the same format and
    compression as the appliance image)."""
    loader = importlib.machinery.SourceFileLoader("image_build", os.path.join(ROOT, "image", "build"))
    spec = importlib.util.spec_from_loader("image_build", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def make_bare(imagedir, out):
    """OUT/vmlinuz (the appliance's kernel) and OUT/initramfs holding only a
    static /init that powers off."""
    os.makedirs(os.path.join(out, "root"), exist_ok=True)
    src = os.path.join(out, "poweroff.c")
    with open(src, "w") as f:
        f.write(POWEROFF_C)
    init = os.path.join(out, "root", "init")
    subprocess.run(["cc", "-static", "-O2", "-o", init, src], check=True)
    os.chmod(init, 0o755)
    ib = image_build_module()
    raw = os.path.join(out, "initramfs.cpio")
    ib.cpio_newc(os.path.join(out, "root"), raw)
    ib.compress(raw, os.path.join(out, "initramfs"), "zstd")
    os.unlink(raw)
    shutil.copyfile(os.path.join(imagedir, "vmlinuz"), os.path.join(out, "vmlinuz"))


def make_flat(a, out):
    """The MainPC image again, with a last override that drops every
    dependency (groups and agents)."""
    import yaml
    with open(os.path.join(ROOT, "configs", "mainpc.yaml")) as f:
        cfg = yaml.safe_load(f)
    flat = {"groups": {g: {"depends_on": [], "agents": {n: {"depends_on": []} for n in body["agents"]}}
                       for g, body in cfg["groups"].items()}}
    path = os.path.join(out, "flat.yaml")
    os.makedirs(out, exist_ok=True)
    with open(path, "w") as f:
        f.write("# bench/boot.py: no dependencies at all\n")
        yaml.safe_dump(flat, f, sort_keys=False)
    r = subprocess.run([os.path.join(ROOT, "image", "build"), "--ainit", a.ainit,
                        "--kernel-cache", os.path.join(ROOT, "build", "kernel"),
                        "--override", a.stub, "--override", path,
                        os.path.join(ROOT, "configs", "mainpc.yaml"), out],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"image/build (flat) failed: {r.stdout}{r.stderr}")


def qemu_cmd(d, a):
    return [QEMU, "--timeout", "300", "--user-net", "--smp", str(a.smp), "--mem", str(a.mem),
            "--kvm-cache", os.path.join(ROOT, "build", "kernel"), d]


def boot_bare(d, a):
    t0 = time.monotonic()
    r = subprocess.run(qemu_cmd(d, a), capture_output=True, text=True)
    t = time.monotonic() - t0
    with open(os.path.join(d, "console.log"), errors="replace") as f:
        con = f.read()
    if r.returncode != 0 or "bare: poweroff" not in con:
        sys.exit(f"bare boot failed (QEMU {r.returncode}): {r.stderr}\n{con[-2000:]}")
    return t, r.stderr


def boot_mainpc(d, a):
    sock = os.path.join(d, "ctl.sock")
    t0 = time.monotonic()
    q = subprocess.Popen(qemu_cmd(d, a), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while not os.path.exists(sock):
            if q.poll() is not None:
                sys.exit(f"QEMU exited {q.returncode}: {q.stderr.read()}")
            time.sleep(0.01)
        while True:
            if time.monotonic() - t0 > 300:
                sys.exit("mainpc: not all healthy after 300 s")
            r = subprocess.run([a.ainit, "ctl", "--socket", sock, "status", "--json"],
                               capture_output=True, text=True, timeout=300)
            doc = json.loads(r.stdout) if r.stdout.strip() else {}
            ags = doc.get("agents") or []
            if ags and all(x["state"] == "healthy" for x in ags):
                host = time.monotonic() - t0
                break
            time.sleep(0.05)
        now = doc["clock_ms"]
        guest = max(now - x["since_ms"] for x in ags) / 1000
        pid1 = (now - doc["uptime_ms"]) / 1000
        subprocess.run([a.ainit, "ctl", "--socket", sock, "poweroff"], capture_output=True,
                       timeout=60)
        rc = q.wait(timeout=120)
        if rc != 0:
            sys.exit(f"mainpc: QEMU exited {rc} after poweroff")
        return host, guest, pid1, len(ags)
    finally:
        if q.poll() is None:
            q.kill()
            q.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ainit", default=os.path.join(ROOT, "build", "ainit"))
    ap.add_argument("--image", default=os.path.join(ROOT, "build", "mainpc"))
    ap.add_argument("--stub", default=os.path.join(ROOT, "build", "stub-mainpc.yaml"),
                    help="the stub override the image was built with (for the flat image)")
    ap.add_argument("--no-flat", action="store_true", help="skip the flat (no dependencies) boot")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--mem", type=int, default=512)
    a = ap.parse_args()
    for f in ("vmlinuz", "initramfs"):
        if not os.path.exists(os.path.join(a.image, f)):
            sys.exit(f"{a.image}/{f} missing: run `make mainpc`")
    tmp = tempfile.mkdtemp(prefix="ainit-bench-boot-")
    try:
        bare = os.path.join(tmp, "bare")
        make_bare(a.image, bare)
        run = os.path.join(tmp, "mainpc")
        os.makedirs(run)
        for f in ("vmlinuz", "initramfs"):
            shutil.copyfile(os.path.join(a.image, f), os.path.join(run, f))
        flatdir = os.path.join(tmp, "flat")
        if not a.no_flat:
            make_flat(a, flatdir)
        sizes = {n: os.path.getsize(os.path.join(d, "initramfs")) // 1024 for n, d in
                 (("bare", bare), ("mainpc", run))}
        anchor, host, guest, pid1, fhost, fguest = [], [], [], [], [], []
        accel = "?"
        for i in range(a.rounds):
            t, err = boot_bare(bare, a)
            accel = "kvm" if ", kvm," in err else "tcg" if ", tcg," in err else accel
            anchor.append(t)
            h, g, p, n = boot_mainpc(run, a)
            host.append(h)
            guest.append(g)
            pid1.append(p)
            line = (f"round {i + 1}: bare boot+poweroff {t:.2f} s; mainpc {n} agents healthy "
                    f"{h:.2f} s (host), {g:.2f} s (guest clock; PID 1 at {p:.2f} s)")
            if not a.no_flat:
                fh, fg, _, _ = boot_mainpc(flatdir, a)
                fhost.append(fh)
                fguest.append(fg)
                line += f"; flat {fh:.2f} s (host), {fg:.2f} s (guest)"
            print(line, flush=True)
        ma, mh, mg = statistics.median(anchor), statistics.median(host), statistics.median(guest)
        print(f"accelerator {accel}, {a.smp} vCPUs, {a.mem} MiB; initramfs bare {sizes['bare']} KiB, "
              f"mainpc {sizes['mainpc']} KiB")
        print(f"anchor: bare initramfs boot -> poweroff, median {ma:.2f} s "
              f"({', '.join(f'{x:.2f}' for x in anchor)})")
        print(f"mainpc: QEMU start -> all healthy, median {mh:.2f} s (host clock), "
              f"{mg:.2f} s (guest clock; PID 1 started at {statistics.median(pid1):.2f} s)")
        if fhost:
            fh, fg = statistics.median(fhost), statistics.median(fguest)
            print(f"flat (no dependencies): QEMU start -> all healthy, median {fh:.2f} s (host clock), "
                  f"{fg:.2f} s (guest clock); ratio flat/anchor {fh / ma:.2f}x, "
                  f"mainpc/flat {mh / fh:.2f}x")
        print(f"ratio mainpc/anchor: {mh / ma:.2f}x (DESIGN 11 target <= 1.5x)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
