"""image/flash refuses every target that is not a whole, unused disk, asks
for the name again for a fixed disk, and writes and verifies otherwise.
Loop devices stand in for disks; nothing real is ever written."""
import os
import subprocess

import pytest

from conftest import ROOT

FLASH = str(ROOT / "image" / "flash")


def flash(*args):
    return subprocess.run([FLASH, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def image(tmp_path):
    p = tmp_path / "disk.img"
    p.write_bytes(os.urandom(1 << 20) * 3)
    return str(p)


def loop_attach(path, partscan=False):
    r = subprocess.run(["losetup", "-f", "--show", *(["-P"] if partscan else []), path],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"no loop device to stand in for a disk: {r.stderr.strip()}")
    return r.stdout.strip()


def loop_detach(dev):
    subprocess.run(["losetup", "-d", dev], capture_output=True)


def test_refuses_files_and_missing_images(image, tmp_path):
    r = flash(image, image)
    assert r.returncode == 1 and "not a block device" in r.stderr, r.stderr
    r = flash("/dev/null", str(tmp_path / "none.img"))
    assert r.returncode == 1 and "no such image" in r.stderr, r.stderr


def test_refuses_the_disk_holding_root(image):
    root = os.stat("/").st_dev
    name = os.path.basename(os.path.realpath(f"/sys/dev/block/{os.major(root)}:{os.minor(root)}"))
    part = f"/sys/class/block/{name}/partition"
    disk = os.path.basename(os.path.dirname(os.path.realpath(f"/sys/class/block/{name}"))) \
        if os.path.exists(part) else name
    if not os.path.exists(f"/dev/{disk}"):
        pytest.skip(f"/ is not on a block device with a node here ({disk})")
    r = flash(f"/dev/{disk}", image, "--confirm", f"/dev/{disk}")
    assert r.returncode == 1 and "in use" in r.stderr, r.stderr


def test_fixed_disk_needs_its_name_then_is_written(image, tmp_path):
    target = tmp_path / "target.img"
    target.write_bytes(b"\0" * (4 << 20))
    dev = loop_attach(str(target))
    try:
        r = flash(dev, image)
        assert r.returncode == 1 and f"--confirm {dev}" in r.stderr, r.stderr
        r = flash(dev, image, "--confirm", "/dev/sdz")
        assert r.returncode == 1, r.stderr
        r = flash(dev, image, "--confirm", dev)
        assert r.returncode == 0, r.stderr
        assert "written and verified" in r.stdout
    finally:
        loop_detach(dev)
    with open(image, "rb") as a, open(target, "rb") as b:
        assert b.read(3 << 20) == a.read()


def test_refuses_a_small_disk(image, tmp_path):
    small = tmp_path / "small.img"
    small.write_bytes(b"\0" * (1 << 20))
    dev = loop_attach(str(small))
    try:
        r = flash(dev, image, "--confirm", dev)
        assert r.returncode == 1 and "smaller than the image" in r.stderr, r.stderr
    finally:
        loop_detach(dev)


def test_refuses_a_partition(image, tmp_path):
    target = tmp_path / "parted.img"
    target.write_bytes(b"\0" * (8 << 20))
    subprocess.run(["sfdisk", "--quiet", str(target)], input="label: gpt\nsize=4096\n",
                   text=True, check=True, capture_output=True)
    dev = loop_attach(str(target), partscan=True)
    try:
        part = dev + "p1"
        name = os.path.basename(part)
        if not os.path.exists(part):
            # no udev/devtmpfs here: make the node from sysfs ourselves
            try:
                with open(f"/sys/class/block/{name}/dev") as f:
                    ma, mi = map(int, f.read().split(":"))
            except OSError:
                pytest.skip("the kernel shows no partitions of loop devices here (loop max_part=0)")
            part = str(tmp_path / name)
            os.mknod(part, 0o600 | 0o060000, os.makedev(ma, mi))
        r = flash(part, image, "--confirm", part)
        assert r.returncode == 1 and "is a partition" in r.stderr, r.stderr
    finally:
        loop_detach(dev)
