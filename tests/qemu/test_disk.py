"""Appliance tier: the flashable disk image (image/disk) boots through UEFI
firmware (OVMF) from its ESP alone: the UKI's small initramfs finds the
read-only AINIT_ROOT partition by name, switches to it, and PID 1 from the
root partition finds the empty AINIT_DATA partition by name, formats it on
first boot, and keeps its data. A root that never appears leaves a degraded
PID 1 that still answers ctl."""

import os
import re
import shutil
import subprocess

import pytest

from conftest import TOP, Guest, build_image
from test_data import CONFIG, wait_boot

DISK_CONFIG = CONFIG.replace(
    "{what: /dev/vda, where: /var/lib/ainit, type: ext4, format_if_empty: true}",
    "{what: LABEL=AINIT_DATA, where: /var/lib/ainit, type: ext4, format_if_empty: true}")
# An agent that reports the file system its root is, and tries to write it.
DISK_CONFIG += """\
      rootfs:
        command: [sh, -c, "echo \\"rootfs: $(grep ' / ' /proc/mounts)\\"; touch /probe 2>&1 | sed 's/^/rootfs: touch: /'; exec sleep 100000"]
"""


@pytest.fixture(scope="module")
def disk_image(tmp_path_factory):
    assert DISK_CONFIG.count("LABEL=AINIT_DATA") == 1
    for f in ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"):
        assert os.path.exists(f), f"{f} missing: `make deps` installs it"
    assert shutil.which("mkfs.erofs"), "mkfs.erofs missing (erofs-utils): `make deps` installs it"
    tmp = tmp_path_factory.mktemp("disk")
    cfg = tmp / "disk.yaml"
    cfg.write_text(DISK_CONFIG)
    img = build_image(str(cfg), str(tmp / "img"))
    r = subprocess.run([os.path.join(TOP, "image", "disk"), "--data-size", "64M", img],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return img


def agent_lines(g, agent):
    r = g.ctl("logs", agent, "-n", "20", timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_uefi_disk_boots_read_only_root_and_keeps_data(disk_image, tmp_path):
    img = disk_image
    disk = os.path.join(img, "disk.img")
    # the layout: ESP, the root partition (erofs), the data partition
    r = subprocess.run(["sfdisk", "--dump", disk], capture_output=True, text=True, check=True)
    names = re.findall(r'name="([^"]*)"', r.stdout)
    assert names == ["ESP", "AINIT_ROOT", "AINIT_DATA"], r.stdout
    with open(os.path.join(img, "root.erofs"), "rb") as f:
        f.seek(1024)
        assert f.read(4) == bytes.fromhex("e2e1f5e0"), "root.erofs: no erofs superblock"
    # the small initramfs is smaller than the whole image's
    assert os.path.getsize(os.path.join(img, "initramfs.boot")) < \
        os.path.getsize(os.path.join(img, "initramfs"))

    for i in range(2):
        os.makedirs(tmp_path / f"run{i}")
    g = Guest(img, tmp_path / "run0", extra=("--uefi", disk))
    try:
        wait_boot(g, 1, timeout=180)
        text = g.console_text()
        # the first stage found the root partition by its name, mounted it
        # read-only and handed over to the root's /sbin/init
        assert re.search(r"boot: root: first stage: root=PARTLABEL=AINIT_ROOT \(erofs\)", text), text
        assert re.search(r"/dev/vda2 \(erofs\) mounted read-only as / in \d+ ms; initramfs freed", text), text
        assert re.search(r"/dev/vda3 is empty: making a ext4 file system", text), text
        assert "DEGRADED" not in text, text
        # what the agents see: / is the root partition's erofs, read-only
        g.wait_status(lambda d: "rootfs: touch:" in agent_lines(g, "rootfs"), "the rootfs agent")
        out = agent_lines(g, "rootfs")
        assert re.search(r"rootfs: \S+ / erofs ro[ ,]", out), out
        assert "Read-only file system" in out, out
        assert g.ctl("poweroff", timeout=30).returncode == 0
        assert g.wait_exit(60) == 0, g.console_text()
    finally:
        g.kill()

    g = Guest(img, tmp_path / "run1", extra=("--uefi", disk))
    try:
        # the counter's first boot was written to the data partition
        wait_boot(g, 2, timeout=180)
        assert "is empty" not in g.console_text()
        assert re.search(r"mounted /dev/vda3 \(ext4\)", g.console_text())
        assert g.ctl("poweroff", timeout=30).returncode == 0
        assert g.wait_exit(60) == 0, g.console_text()
    finally:
        g.kill()


def test_root_never_appears_degraded_but_answers(disk_image, tmp_path):
    """The small initramfs booted directly (no firmware: fast) with a root=
    that no disk has: PID 1 waits rootwait= seconds, says so on the console,
    stays alive in the initramfs and answers ctl; poweroff still works."""
    boot = tmp_path / "boot"
    os.makedirs(boot)
    shutil.copyfile(os.path.join(disk_image, "vmlinuz"), boot / "vmlinuz")
    shutil.copyfile(os.path.join(disk_image, "initramfs.boot"), boot / "initramfs")
    os.makedirs(tmp_path / "run")
    g = Guest(str(boot), tmp_path / "run", extra=("--append", "root=PARTLABEL=NOPE rootfstype=erofs ro rootwait=2",
                                      "--disk", f"{tmp_path}/blank.img:8M"))
    try:
        _, doc = g.status()
        assert doc.get("pid1") is True, doc
        assert "root=PARTLABEL=NOPE: no such block device within 2 s" in (doc.get("degraded") or ""), doc
        assert not doc.get("agents"), doc
        text = g.console_text()
        assert re.search(r"DEGRADED: root=PARTLABEL=NOPE: no such block device within 2 s "
                         r"\(block devices: vda\)", text), text
        assert g.ctl("poweroff", timeout=30).returncode == 0
        assert g.wait_exit(60) == 0, g.console_text()
        ours = [l for l in g.console_lines() if l.startswith("ainit: ")]
        assert ours and ours[-1] == "ainit: poweroff", ours
    finally:
        g.kill()
