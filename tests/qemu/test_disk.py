"""Appliance tier: the flashable disk image (image/disk) boots through UEFI
firmware (OVMF) from its ESP alone, and PID 1 finds the empty AINIT_DATA
partition by name, formats it on first boot, and keeps its data."""

import os
import re
import subprocess

from conftest import TOP, Guest, build_image
from test_data import CONFIG, wait_boot

DISK_CONFIG = CONFIG.replace(
    "{what: /dev/vda, where: /var/lib/ainit, type: ext4, format_if_empty: true}",
    "{what: LABEL=AINIT_DATA, where: /var/lib/ainit, type: ext4, format_if_empty: true}")


def test_uefi_disk_boots_and_keeps_data(tmp_path):
    assert DISK_CONFIG != CONFIG
    for f in ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"):
        assert os.path.exists(f), f"{f} missing: `make deps` installs it"
    cfg = tmp_path / "disk.yaml"
    cfg.write_text(DISK_CONFIG)
    img = build_image(str(cfg), str(tmp_path / "img"))
    r = subprocess.run([os.path.join(TOP, "image", "disk"), "--data-size", "64M", img],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    disk = os.path.join(img, "disk.img")
    for i in range(2):
        os.makedirs(tmp_path / f"run{i}")

    g = Guest(img, tmp_path / "run0", extra=("--uefi", disk))
    try:
        wait_boot(g, 1, timeout=180)
        text = g.console_text()
        assert re.search(r"/dev/vda2 is empty: making a ext4 file system", text), text
        assert g.ctl("poweroff", timeout=30).returncode == 0
        assert g.wait_exit(60) == 0, g.console_text()
    finally:
        g.kill()

    g = Guest(img, tmp_path / "run1", extra=("--uefi", disk))
    try:
        wait_boot(g, 2, timeout=180)
        assert "is empty" not in g.console_text()
        assert re.search(r"mounted /dev/vda2 \(ext4\)", g.console_text())
        assert g.ctl("poweroff", timeout=30).returncode == 0
        assert g.wait_exit(60) == 0, g.console_text()
    finally:
        g.kill()
