#!/usr/bin/env python3
"""Example agent in Python with pyzmq: the legacy health protocol and sd_notify.

It binds a REP socket on HEALTH_CHECK_PORT that answers "health_check" (or a
JSON request {"action": "health_check"}) with {"status": "ok", ...}, a REP
socket on AGENT_PORT that echoes requests, and tells NOTIFY_SOCKET READY=1
when ainit gave it one. Environment from ainit: AINIT_AGENT, AINIT_GROUP,
AGENT_PORT, HEALTH_CHECK_PORT, ZMQ_BIND_IP, NOTIFY_SOCKET.
"""
import json
import os
import signal
import socket
import sys
import time

import zmq


def sd_notify(state: str) -> bool:
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(state.encode(), path)
    return True


def main() -> int:
    name = os.environ.get("AINIT_AGENT", "PythonExample")
    ip = os.environ.get("ZMQ_BIND_IP", "0.0.0.0")
    port = int(os.environ.get("AGENT_PORT", "0"))
    hport = int(os.environ.get("HEALTH_CHECK_PORT", "0"))
    started = time.monotonic()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))

    ctx = zmq.Context()
    poller = zmq.Poller()
    health = service = None
    if hport:
        health = ctx.socket(zmq.REP)
        health.setsockopt(zmq.LINGER, 0)
        health.bind(f"tcp://{ip}:{hport}")
        poller.register(health, zmq.POLLIN)
    if port:
        service = ctx.socket(zmq.REP)
        service.setsockopt(zmq.LINGER, 0)
        service.bind(f"tcp://{ip}:{port}")
        poller.register(service, zmq.POLLIN)
    print(f"{name}: python example agent pid {os.getpid()} port {port} health {hport}", flush=True)
    sd_notify(f"READY=1\nSTATUS=serving on port {port}")

    while not stop:
        try:
            events = dict(poller.poll(1000))
        except zmq.ZMQError:
            continue
        if health in events:
            health.recv()
            health.send_string(json.dumps({
                "status": "ok", "agent": name, "pid": os.getpid(),
                "uptime_s": int(time.monotonic() - started)}))
        if service in events:
            msg = service.recv()
            service.send(msg)
    print(f"{name}: SIGTERM, exiting", flush=True)
    ctx.destroy(linger=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
