"""Appliance tier: the data disk. PID 1 formats an empty data disk on first
boot (appliance.mounts, format_if_empty), mounts it, and what an agent
writes there, in a named volume, survives a clean poweroff and a power cut."""

import json
import os
import re
import textwrap
import time

from conftest import Guest, build_image

CONFIG = textwrap.dedent("""\
    version: 1
    appliance:
      hostname: data-test
      # no data_dir: PID 1 keeps named volumes in /var/lib/ainit/volumes, on
      # the data disk mounted below (never on the /run tmpfs)
      mounts:
        - {what: /dev/vda, where: /var/lib/ainit, type: ext4, format_if_empty: true}
    defaults: {user: root}
    volumes: {data: {}}
    groups:
      g:
        volumes: ["data:/mnt"]   # a mount point the image has (its root is read-only)
        agents:
          counter:
            # counts its boots in the data volume
            command: [sh, -c, "n=$(cat /mnt/boots 2>/dev/null || echo 0); n=$((n+1)); echo $n > /mnt/boots; sync; echo \\"counter: boot $n\\"; exec sleep 100000"]
    """)


def boots_seen(g):
    r = g.ctl("--json", "logs", "counter", "-n", "20", timeout=30)
    if r.returncode != 0:
        return []
    return [int(n) for n in re.findall(r"counter: boot (\d+)", json.loads(r.stdout)["text"])]


def wait_boot(g, n, timeout=120):
    end = time.monotonic() + timeout
    seen = []
    while time.monotonic() < end:
        assert g.proc.poll() is None, g.console_text()
        seen = boots_seen(g)
        if seen:
            break
        time.sleep(0.3)
    assert seen == [n], f"expected boot {n}, the counter said {seen}\n{g.console_text()}"


def test_data_disk_formatted_and_kept(tmp_path):
    cfg = tmp_path / "data.yaml"
    cfg.write_text(CONFIG)
    img = build_image(str(cfg), str(tmp_path / "img"))
    disk = str(tmp_path / "data.img")
    boot = lambda i: Guest(img, tmp_path / f"run{i}", extra=("--disk", f"{disk}:64M"))
    for i in range(3):
        os.makedirs(tmp_path / f"run{i}")

    # 1: an empty disk is formatted, mounted, written
    g = boot(0)
    try:
        wait_boot(g, 1)
        text = g.console_text()
        assert re.search(r"/dev/vda is empty: making a ext4 file system", text), text
        assert g.ctl("poweroff", timeout=30).returncode == 0
        assert g.wait_exit(60) == 0, g.console_text()
    finally:
        g.kill()

    # 2: after a clean poweroff the data is there, and the disk is not formatted again
    g = boot(1)
    try:
        wait_boot(g, 2)
        assert "is empty" not in g.console_text()
        # 3: power cut: image/qemu killed, QEMU dies with it (PDEATHSIG);
        # the counter had synced its write
        g.proc.kill()
        g.proc.wait()
    finally:
        g.kill()

    g = boot(2)
    try:
        wait_boot(g, 3)
        assert g.ctl("poweroff", timeout=30).returncode == 0
        assert g.wait_exit(60) == 0, g.console_text()
    finally:
        g.kill()
