# Image build, QEMU runner, disk image, flashing and `make demo`
# (image/; docs/operations.md).

IMAGE_TOOLS  := image/build $(shell find rootfs -type f 2>/dev/null)
DEMO_DIR     := $(BUILD)/demo

.PHONY: image demo disk flash

# Kernel and modules come from Debian's linux-image-cloud-amd64, fetched once
# into $(BUILD)/kernel/ (apt-get download + dpkg -x). Any configs/NAME.yaml:
# `make build/NAME/initramfs`, `make build/NAME/disk.img`.
$(BUILD)/%/initramfs: configs/%.yaml $(BUILD)/ainit $(IMAGE_TOOLS)
	$(PYTHON) image/build --ainit $(BUILD)/ainit --kernel-cache $(BUILD)/kernel $< $(@D)

# GPT: ESP with one unified kernel image (kernel + initramfs + cmdline),
# and an empty AINIT_DATA partition that ainit formats on first boot.
$(BUILD)/%/disk.img: $(BUILD)/%/initramfs image/disk
	$(PYTHON) image/disk $(@D)

image: $(DEMO_DIR)/initramfs
disk: $(DEMO_DIR)/disk.img

# deps first (a fresh machine has no compiler yet), then build, then boot.
demo: deps
	$(MAKE) all image
	$(PYTHON) image/demo --ainit $(BUILD)/ainit $(DEMO_DIR)

# make flash DEVICE=/dev/sdX [IMAGE=build/demo/disk.img] [CONFIRM=/dev/sdX]
# image/flash refuses anything but a whole, unused disk, and a fixed
# (non-removable) one unless CONFIRM repeats its name.
flash:
	@test -n "$(DEVICE)" || { echo "usage: make flash DEVICE=/dev/sdX [IMAGE=$(DEMO_DIR)/disk.img] [CONFIRM=/dev/sdX]" >&2; exit 2; }
	$(PYTHON) image/flash "$(DEVICE)" "$(or $(IMAGE),$(DEMO_DIR)/disk.img)" --confirm "$(CONFIRM)"

# What tests/qemu needs: ainit (host side client and the guest's init) and
# the demo image; the tests build their other images themselves.
QEMU_TEST_DEPS += $(BUILD)/ainit $(DEMO_DIR)/initramfs
