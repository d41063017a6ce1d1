# Image build, QEMU runner, disk image, flashing and `make demo`
# (image/; docs/operations.md).

IMAGE_TOOLS  := image/build $(shell find rootfs -type f 2>/dev/null)
DEMO_DIR     := $(BUILD)/demo

.PHONY: image demo disk flash mainpc pc2

# Kernel and modules come from Debian's linux-image-cloud-amd64, fetched once
# into $(BUILD)/kernel/ (apt-get download + dpkg -x). Any configs/NAME.yaml:
# `make build/NAME/initramfs`, `make build/NAME/disk.img`.
$(BUILD)/%/initramfs: configs/%.yaml $(BUILD)/ainit $(IMAGE_TOOLS)
	$(PYTHON) image/build --ainit $(BUILD)/ainit --kernel-cache $(BUILD)/kernel $< $(@D)

# GPT: ESP with one unified kernel image (kernel + a small initramfs +
# cmdline root=PARTLABEL=AINIT_ROOT), the read-only AINIT_ROOT partition
# (erofs of build/NAME/root/), and an empty AINIT_DATA partition that ainit
# formats on first boot.
$(BUILD)/%/disk.img: $(BUILD)/%/initramfs image/disk
	$(PYTHON) image/disk $(@D)

# The real configs as appliances with stub agents (docs/operations.md): the
# config itself, plus the override configs/stub-override.py --vm writes
# (every Python agent -> stub-agent/registry, RAM-only, no GPU), installed as
# /etc/ainit/appliance.d/10-stub-NAME.yaml; redis-server and nats-server are
# the real ones. `make mainpc` -> build/mainpc/, `make pc2` -> build/pc2/.
MAINPC_DIR   := $(BUILD)/mainpc
PC2_DIR      := $(BUILD)/pc2
$(BUILD)/stub-%.yaml: configs/%.yaml configs/stub-override.py
	$(PYTHON) configs/stub-override.py $< --agents /usr/libexec/ainit --vm > $@.tmp
	mv $@.tmp $@
$(MAINPC_DIR)/initramfs $(PC2_DIR)/initramfs: $(BUILD)/%/initramfs: configs/%.yaml $(BUILD)/stub-%.yaml \
		$(BUILD)/ainit $(AGENT_DIR)/stub-agent $(AGENT_DIR)/registry $(IMAGE_TOOLS)
	$(PYTHON) image/build --ainit $(BUILD)/ainit --kernel-cache $(BUILD)/kernel \
	  --agents-dir $(AGENT_DIR) --override $(BUILD)/stub-$*.yaml $< $(@D)
mainpc: $(MAINPC_DIR)/initramfs
pc2: $(PC2_DIR)/initramfs

image: $(DEMO_DIR)/initramfs
disk: $(DEMO_DIR)/disk.img

# deps first (a fresh machine has no compiler yet), then build, then boot.
# Then the MainPC appliance (61 agents, real redis and nats) to all-healthy;
# its eth0 (appliance.network) is a user-mode NIC with restrict=on (no way
# out), so that boot does not wait for a missing interface.
demo: deps
	$(MAKE) all image mainpc
	$(PYTHON) image/demo --ainit $(BUILD)/ainit $(DEMO_DIR)
	$(PYTHON) image/demo --ainit $(BUILD)/ainit --healthy --show 0 --qemu-arg=--user-net $(MAINPC_DIR)

# make flash DEVICE=/dev/sdX [IMAGE=build/demo/disk.img] [CONFIRM=/dev/sdX]
# image/flash refuses anything but a whole, unused disk, and a fixed
# (non-removable) one unless CONFIRM repeats its name.
flash:
	@test -n "$(DEVICE)" || { echo "usage: make flash DEVICE=/dev/sdX [IMAGE=$(DEMO_DIR)/disk.img] [CONFIRM=/dev/sdX]" >&2; exit 2; }
	$(PYTHON) image/flash "$(DEVICE)" "$(or $(IMAGE),$(DEMO_DIR)/disk.img)" --confirm "$(CONFIRM)"

# What tests/qemu needs: ainit (host side client and the guest's init) and
# the demo image; the tests build their other images themselves.
QEMU_TEST_DEPS += $(BUILD)/ainit $(DEMO_DIR)/initramfs $(MAINPC_DIR)/initramfs $(PC2_DIR)/initramfs
