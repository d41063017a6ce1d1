"""Host integration tier: the real build/ainit (or $AINIT) against the real
kernel. Run as root. Shared fixtures: `ainit_run` starts `ainit run` on a
config written into a temp dir and gives a handle with ctl helpers."""
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AINIT = os.environ.get("AINIT") or str(ROOT / "build" / "ainit")
BUILD = Path(os.environ.get("BUILD") or ROOT / "build")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_for(pred, timeout=10.0, step=0.02, what="condition"):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = pred()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Ainit:
    def __init__(self, tmp: Path, config: str, extra_args=(), env=None):
        self.dir = tmp
        self.cfg = tmp / "appliance.yaml"
        self.cfg.write_text(config)
        self.state = tmp / "state"
        self.sock = self.state / "ctl.sock"
        self.log = tmp / "ainit.log"
        self.logf = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [AINIT, "run", "--config", str(self.cfg), "--state-dir", str(self.state), *extra_args],
            stdout=self.logf, stderr=subprocess.STDOUT, env=env)
        wait_for(lambda: self.sock.exists() or self.proc.poll() is not None, what="ctl socket")
        if self.proc.poll() is not None:
            raise AssertionError(f"ainit exited {self.proc.returncode}: {self.log.read_text()}")

    def request(self, obj_or_line, timeout=5.0):
        """Send one raw line (str/bytes) or object; return the reply dict."""
        line = obj_or_line
        if isinstance(line, dict):
            line = json.dumps(line)
        if isinstance(line, str):
            line = line.encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.sock))
            s.sendall(line + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        return json.loads(buf)

    def ctl(self, *args, check=False):
        return subprocess.run([AINIT, "ctl", "--socket", str(self.sock), *args],
                              capture_output=True, text=True, timeout=20, check=check)

    def status(self):
        r = self.request({"cmd": "status"})
        assert "error" not in r, r
        return {a["name"]: a for a in r["agents"]}

    def agent(self, name):
        return self.status()[name]

    def wait_state(self, name, *states, timeout=10.0):
        return wait_for(lambda: self.agent(name)["state"] in states and self.agent(name),
                        timeout=timeout, what=f"{name} in {states}")

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("ainit did not exit after " + sig.name)
        self.logf.close()
        return self.proc.returncode

    def logtext(self):
        if not self.logf.closed:
            self.logf.flush()
        return self.log.read_text(errors="replace")


@pytest.fixture
def ainit_run(tmp_path):
    started = []

    def start(config, **kw):
        a = Ainit(tmp_path, config, **kw)
        started.append(a)
        return a

    yield start
    for a in started:
        if a.proc.poll() is None:
            # a failed test: stop ainit the orderly way so its agents go too
            a.proc.terminate()
            try:
                a.proc.wait(20)
            except subprocess.TimeoutExpired:
                a.proc.kill()
                a.proc.wait()


@pytest.fixture(autouse=True)
def need_root():
    if os.geteuid() != 0:
        pytest.skip("host integration tests run as root")
