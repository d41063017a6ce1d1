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
