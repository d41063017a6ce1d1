"""Appliance tier: a Python agent with pyzmq (the legacy agents' stack) runs
in the image, and ainit's ZMQ health probe (libzmq dlopen()ed in the guest)
finds it healthy. The image carries python3's standard library, pyzmq and
libzmq because the config runs python3 and has a zmq: check."""

import os
import textwrap

from conftest import TOP, Guest, build_image

CONFIG = textwrap.dedent("""\
    version: 1
    appliance: {hostname: py-test}
    defaults: {user: agent}
    groups:
      py:
        network: host
        agents:
          example:
            command: [python3, /opt/ai/example_agent.py]
            port: 7200
            health_port: 8200
            health: {zmq: 8200, interval: 1s, start_period: 120s}
    """)


def test_python_agent_healthy_over_zmq(tmp_path):
    cfg = tmp_path / "py.yaml"
    cfg.write_text(CONFIG)
    agent = os.path.join(TOP, "agents", "python", "example_agent.py")
    img = build_image(str(cfg), str(tmp_path / "img"),
                      extra=("--add", f"{agent}:/opt/ai/example_agent.py"))
    g = Guest(img, tmp_path)
    try:
        doc = g.wait_status(
            lambda d: any(a["name"] == "example" and a["health"] == "healthy"
                          for a in d.get("agents", [])),
            "the Python agent to pass its ZMQ health check", timeout=180)
        a = [a for a in doc["agents"] if a["name"] == "example"][0]
        assert a["restarts"] == 0, a
        assert g.ctl("poweroff", timeout=30).returncode == 0
        assert g.wait_exit(60) == 0, g.console_text()
    finally:
        g.kill()
