# Image build, QEMU runner and `make demo` (image/; docs/operations.md).

IMAGE_TOOLS  := image/build $(shell find rootfs -type f 2>/dev/null)
DEMO_DIR     := $(BUILD)/demo

.PHONY: image demo

# Kernel and modules come from Debian's linux-image-cloud-amd64, fetched once
# into $(BUILD)/kernel/ (apt-get download + dpkg -x).
$(DEMO_DIR)/initramfs: configs/demo.yaml $(BUILD)/ainit $(IMAGE_TOOLS)
	$(PYTHON) image/build --ainit $(BUILD)/ainit --kernel-cache $(BUILD)/kernel configs/demo.yaml $(DEMO_DIR)

image: $(DEMO_DIR)/initramfs

# deps first (a fresh machine has no compiler yet), then build, then boot.
demo: deps
	$(MAKE) all image
	$(PYTHON) image/demo --ainit $(BUILD)/ainit $(DEMO_DIR)

# What tests/qemu needs: ainit (host side client and the guest's init) and
# the demo image; the tests build their other images themselves.
QEMU_TEST_DEPS += $(BUILD)/ainit $(DEMO_DIR)/initramfs
