"""Shared pieces of the appliance tier: boot an image in QEMU (TCG unless KVM
really works) with its console and control socket in a private temp dir, and
talk to it with `ainit ctl` from the host.

Env: BUILD = build dir (holds ainit, kernel/, demo/); set by `make check-qemu`.
"""

import json
import os
import shutil
import subprocess
import time

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", os.path.join(TOP, "build"))
AINIT = os.path.join(BUILD, "ainit")
BOOT_TIMEOUT = float(os.environ.get("AINIT_QEMU_BOOT_TIMEOUT", "120"))
RUNNING = {"healthy", "starting", "unhealthy"}


def need(path, what):
    if not os.path.exists(path):
        pytest.fail(f"{path} missing: {what} (run `make check-qemu`, which builds it)")


@pytest.fixture(scope="session", autouse=True)
def qemu_present():
    if not shutil.which("qemu-system-x86_64"):
        pytest.skip("qemu-system-x86_64 not installed (package qemu-system-x86; `make deps`)")
    need(AINIT, "ainit binary")


def build_image(config, outdir, extra=()):
    """image/build CONFIG OUTDIR, with the shared kernel cache."""
    r = subprocess.run([os.path.join(TOP, "image", "build"), "--ainit", AINIT,
                        "--kernel-cache", os.path.join(BUILD, "kernel"), *extra, config, outdir],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"image/build failed:\n{r.stdout}\n{r.stderr}"
    return outdir


class Guest:
    """One QEMU guest booted from IMAGEDIR, its state kept in WORKDIR."""

    def __init__(self, imagedir, workdir, machine="q35", extra=()):
        self.workdir = str(workdir)
        self.console = os.path.join(self.workdir, "console.log")
        self.sock = os.path.join(self.workdir, "ctl.sock")
        # Private copies: `make demo` may boot the same image at the same time.
        for f in ("vmlinuz", "initramfs"):
            shutil.copyfile(os.path.join(imagedir, f), os.path.join(self.workdir, f))
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [os.path.join(TOP, "image", "qemu"), "--timeout", "600", "--machine", machine,
             "--kvm-cache", os.path.join(BUILD, "kernel"), *extra, self.workdir],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.sock):
            assert self.proc.poll() is None, f"QEMU exited early: {self.proc.stdout.read()}"
            assert time.monotonic() < deadline, "QEMU never created its control socket"
            time.sleep(0.05)

    def ctl(self, *args, timeout=BOOT_TIMEOUT):
        return subprocess.run([AINIT, "ctl", "--socket", self.sock, *args],
                              capture_output=True, text=True, timeout=timeout)

    def status(self, timeout=BOOT_TIMEOUT):
        r = self.ctl("status", "--json", timeout=timeout)
        assert r.stdout.strip(), f"no status reply (exit {r.returncode}): {r.stderr}"
        return r, json.loads(r.stdout)

    def wait_status(self, pred, what, timeout=BOOT_TIMEOUT):
        deadline = time.monotonic() + timeout
        doc = None
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, \
                f"QEMU exited {self.proc.returncode} while waiting for {what}:\n{self.console_text()}"
            _, doc = self.status()
            if pred(doc):
                return doc
            time.sleep(0.2)
        pytest.fail(f"timed out waiting for {what}; last status {doc}\n{self.console_text()}")

    def console_text(self):
        try:
            with open(self.console, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def console_lines(self):
        return [l.rstrip("\r") for l in self.console_text().splitlines() if l.strip()]

    def wait_exit(self, timeout=60):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"QEMU still running {timeout} s later:\n{self.console_text()}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
