# agents/gpu-probe: the CUDA probe agent, linked against the static cudart so
# it runs where only the NVIDIA driver is installed. Built only where the
# CUDA toolkit is (CUDA_HOME, default /usr/local/cuda); skipped otherwise.
CUDA_HOME ?= /usr/local/cuda
GPU_PROBE := $(BUILD)/agents/gpu-probe

ifneq ($(wildcard $(CUDA_HOME)/include/cuda_runtime_api.h $(CUDA_HOME)/lib64/libcudart_static.a),)
all: $(GPU_PROBE)
HOST_TEST_DEPS += $(GPU_PROBE)

$(GPU_PROBE): agents/gpu-probe/gpu-probe.c
	@mkdir -p $(@D)
	$(CC) -std=c17 -O2 -g -Wall -Wextra -Werror -I$(CUDA_HOME)/include -o $@ $< \
	  $(CUDA_HOME)/lib64/libcudart_static.a -ldl -lpthread -lrt -static-libgcc
else
$(GPU_PROBE):
	@echo "gpu-probe: no CUDA toolkit at $(CUDA_HOME): not built"
endif
.PHONY: gpu-probe
gpu-probe: $(GPU_PROBE)

# Everything the real-GPU check needs on a machine that reaches no package
# registry (docs/gpu.md): ainit and gpu-probe with the shared libraries they
# and libzmq need beside them (glibc excepted: every target has a newer one),
# and the script that runs the check. Carry $(BUILD)/gpu-bundle there.
GPU_BUNDLE := $(BUILD)/gpu-bundle
.PHONY: gpu-bundle
gpu-bundle: $(BUILD)/ainit $(GPU_PROBE) agents/gpu-probe/device-check.sh
	rm -rf $(GPU_BUNDLE) && mkdir -p $(GPU_BUNDLE)/lib
	cp $(BUILD)/ainit agents/gpu-probe/device-check.sh $(GPU_BUNDLE)/
	cp $(GPU_PROBE) $(GPU_BUNDLE)/ 2>/dev/null || echo "gpu-bundle: no gpu-probe (no CUDA toolkit)"
	zmq=$$(ldconfig -p | awk '/libzmq\.so\.5 .*x86-64/ {print $$NF; exit}'); \
	for f in $(BUILD)/ainit $$zmq; do \
	  [ -n "$$f" ] && ldd $$f | awk '/=> \// {print $$3}'; \
	done | sort -u | grep -Ev '/(libc|libm|libdl|libpthread|librt|libresolv|libanl|libutil|libnss_[^/]*|ld-linux[^/]*)\.so' | \
	  xargs -r -I{} cp -L {} $(GPU_BUNDLE)/lib/; \
	[ -n "$$zmq" ] && cp -L $$zmq $(GPU_BUNDLE)/lib/ || true
	@du -sh $(GPU_BUNDLE) | sed 's/^/gpu-bundle: /'
