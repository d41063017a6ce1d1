"""The control socket under bad input: junk, unterminated and huge lines,
slow clients, many clients, and peers without rights. The supervisor keeps
supervising throughout."""
import json
import os
import socket
import subprocess
import time

from conftest import AINIT, wait_for

CTL_MAX_CLIENTS = 16  # init/ctl.h

CONFIG = """
version: 1
groups:
  g:
    agents:
      steady: {command: [sleep, "300"]}
      crash: {command: [sh, -c, "sleep 0.2; exit 1"], restart: {delay: 50ms, burst: 10000, within: 1s}}
"""


def raw(sock, data, timeout=5.0, read=True):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock))
        s.sendall(data)
        if not read:
            return b""
        buf = b""
        while buf.count(b"\n") < data.count(b"\n") or not buf:
            c = s.recv(65536)
            if not c:
                break
            buf += c
        return buf


def test_junk_gets_errors(ainit_run):
    a = ainit_run(CONFIG)
    for line in [b"junk", b"{", b"[]", b'{"cmd":1}', b'{"cmd":"nope"}', b"\x00\xff\xfe",
                 b'{"cmd":"status"' + b"}" * 50, b'{"cmd":"start"}']:
        rep = json.loads(raw(a.sock, line + b"\n").split(b"\n")[0])
        assert "error" in rep, (line, rep)
        assert rep["v"] == 1
    assert a.request({"cmd": "status"})["ok"]


def test_pipelined_requests_each_answered(ainit_run):
    a = ainit_run(CONFIG)
    out = raw(a.sock, b'{"cmd":"ping"}\n{"cmd":"status"}\nbad\n{"cmd":"ping"}\n')
    lines = [json.loads(l) for l in out.strip().split(b"\n")]
    assert len(lines) == 4
    assert lines[0]["ok"] and lines[1]["ok"] and "error" in lines[2] and lines[3]["ok"]


def test_100k_line(ainit_run):
    a = ainit_run(CONFIG)
    big = b'{"cmd":"status","pad":"' + b"x" * 100_000 + b'"}\n'
    out = raw(a.sock, big + b'{"cmd":"ping"}\n')
    lines = out.strip().split(b"\n")
    first = json.loads(lines[0])
    assert "longer than" in first["error"]
    # the rest of the huge line is skipped; the next request is served
    assert json.loads(lines[-1])["ok"]
    assert a.request({"cmd": "ping"})["ok"]


def test_slow_and_silent_clients_do_not_block(ainit_run):
    a = ainit_run(CONFIG)
    hold = []
    refused = 0
    for i in range(CTL_MAX_CLIENTS + 4):  # more than the client slots
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(a.sock))
        try:
            s.sendall(b'{"cmd":"sta')  # never finished
        except (BrokenPipeError, ConnectionResetError):
            # ainit already answered "too many clients" and closed: only
            # a connection past the slots may be turned away
            assert i >= CTL_MAX_CLIENTS, f"client {i} refused with free slots"
            refused += 1
            s.close()
            continue
        hold.append(s)
    # every connection past the slots is turned away with a reply, never kept
    for s in hold[CTL_MAX_CLIENTS:]:
        s.settimeout(5.0)
        try:
            data = s.recv(4096)
        except ConnectionResetError:
            data = b""  # the busy reply was lost to the reset: still refused
        assert data == b"" or b"too many clients" in data
        refused += 1
    assert refused == 4
    hold = hold[:CTL_MAX_CLIENTS]
    # the supervisor goes on restarting the crasher meanwhile
    for s in hold[:4]:
        s.close()
    hold = hold[4:]

    def ping():
        try:
            return a.request({"cmd": "ping"}).get("ok")
        except (BlockingIOError, ConnectionError, json.JSONDecodeError):
            return False  # backlog momentarily full / slot not yet free: retry
    wait_for(ping, what="a slot frees up")
    r0 = a.agent("crash")["restarts"]
    wait_for(lambda: a.agent("crash")["restarts"] > r0, what="restarts continue")
    for s in hold:
        s.close()
    assert a.stop() == 0


def test_unterminated_then_close(ainit_run):
    a = ainit_run(CONFIG)
    raw(a.sock, b'{"cmd":"status"', read=False)
    assert a.request({"cmd": "ping"})["ok"]


def test_non_admin_cannot_change_state(ainit_run):
    a = ainit_run(CONFIG)
    # let an unprivileged user reach the socket: open the pytest temp dirs
    for d in [a.state, *a.state.parents]:
        if str(d) in ("/", "/tmp"):
            break
        os.chmod(d, os.stat(d).st_mode | 0o711)
    os.chmod(a.sock, 0o666)  # let an unprivileged user connect for the test
    pid = a.wait_state("steady", "healthy")["pid"]
    nobody = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", AINIT, "ctl",
         "--socket", str(a.sock), "stop", "steady"], capture_output=True, text=True, timeout=10)
    assert nobody.returncode == 1
    assert "permission denied" in nobody.stderr
    r = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", AINIT, "ctl",
         "--socket", str(a.sock), "status", "--json"], capture_output=True, text=True, timeout=10)
    assert json.loads(r.stdout)["ok"]
    assert a.agent("steady")["pid"] == pid


def test_socket_mode(ainit_run):
    a = ainit_run(CONFIG)
    assert oct(os.stat(a.sock).st_mode & 0o777) == "0o660"


def test_status_json_fields(ainit_run):
    a = ainit_run(CONFIG)
    a.wait_state("steady", "healthy")
    r = a.ctl("status", "--json")
    doc = json.loads(r.stdout)
    for ag in doc["agents"]:
        for k in ("name", "group", "state", "pid", "restarts", "health"):
            assert k in ag
    t = a.ctl("status")
    head = t.stdout.splitlines()[0].split()
    assert head[:7] == ["GROUP", "AGENT", "STATE", "HEALTH", "PID", "UPTIME", "RESTARTS"]


def test_ctl_without_server():
    r = subprocess.run([AINIT, "ctl", "--socket", "/nonexistent/ctl.sock", "status"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "cannot connect" in r.stderr
