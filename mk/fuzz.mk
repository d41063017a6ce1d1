# fuzz: libFuzzer harness for the config loader and checker (fuzz/config_fuzz.c).
#   make fuzz                 build, seed the corpus, run FUZZ_TIME seconds (default 600)
#   make fuzz-smoke           the same for FUZZ_SMOKE_TIME seconds (default 45); part of make check
# The corpus grows in $(BUILD)/fuzz/corpus; crashes land in $(BUILD)/fuzz/ as crash-*.
FUZZ_CC         ?= clang
FUZZ_TIME       ?= 600
FUZZ_SMOKE_TIME ?= 45
FUZZ_CTL_TIME   ?= $(FUZZ_TIME)
FUZZ_DIR        := $(BUILD)/fuzz
# every module but main.c: what the checker reaches changes as modules grow
FUZZ_SRCS       := $(filter-out init/main.c,$(SRCS))
FUZZ_SEEDS      := $(wildcard configs/*.yaml configs/import/*.yaml) $(filter-out tests/fuzz-seeds/ctl,$(wildcard tests/fuzz-seeds/*)) \
                   $(wildcard ../shared/fixtures/seed-era/*/*.yaml ../shared/fixtures/seed-era/*/*.md \
                     ../shared/fixtures/seed-era/compose/*/*.yml)
FUZZ_FLAGS      := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                   -fno-omit-frame-pointer -g -O1

.PHONY: fuzz fuzz-smoke fuzz-build
fuzz-build: $(FUZZ_DIR)/config_fuzz $(FUZZ_DIR)/ctl_fuzz

# The control protocol: any bytes a client may send (fuzz/ctl_fuzz.c).
$(FUZZ_DIR)/ctl_fuzz: fuzz/ctl_fuzz.c $(FUZZ_SRCS) $(wildcard init/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CSTD) $(WARN) -Wno-unused-command-line-argument -iquote init $(FUZZ_FLAGS) \
	  $(PKG_CFLAGS) -o $@ fuzz/ctl_fuzz.c $(FUZZ_SRCS) $(PKG_LIBS) -ldl

$(FUZZ_DIR)/ctl-corpus/.seeded: $(wildcard tests/fuzz-seeds/ctl/*)
	@mkdir -p $(@D)
	@cp tests/fuzz-seeds/ctl/* $(@D)/
	@touch $@

$(FUZZ_DIR)/config_fuzz: fuzz/config_fuzz.c $(FUZZ_SRCS) $(wildcard init/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CSTD) $(WARN) -Wno-unused-command-line-argument -iquote init $(FUZZ_FLAGS) \
	  $(PKG_CFLAGS) -o $@ fuzz/config_fuzz.c $(FUZZ_SRCS) $(PKG_LIBS) -ldl

$(FUZZ_DIR)/corpus/.seeded: $(FUZZ_SEEDS)
	@mkdir -p $(@D)
	@for f in $(FUZZ_SEEDS); do cp "$$f" "$(@D)/seed-$$(echo $$f | tr / _)"; done
	@touch $@

# -rss_limit_mb: the harness keeps nothing between inputs; -timeout: a hang is a finding
FUZZ_RUN = cd $(FUZZ_DIR) && ./config_fuzz -rss_limit_mb=1024 -timeout=10 -max_len=65536 \
	-dict=$(abspath fuzz/config.dict) -print_final_stats=1 corpus

fuzz: $(FUZZ_DIR)/config_fuzz $(FUZZ_DIR)/corpus/.seeded $(FUZZ_DIR)/ctl_fuzz $(FUZZ_DIR)/ctl-corpus/.seeded
	$(FUZZ_RUN) -max_total_time=$(FUZZ_TIME)
	cd $(FUZZ_DIR) && ./ctl_fuzz -rss_limit_mb=1024 -timeout=10 -max_len=65536 \
	  -print_final_stats=1 ctl-corpus -max_total_time=$(FUZZ_CTL_TIME)

# In make check: skipped, and said so, where clang or libFuzzer is missing.
fuzz-smoke:
	@if command -v $(FUZZ_CC) >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory fuzz FUZZ_TIME=$(FUZZ_SMOKE_TIME) FUZZ_CTL_TIME=20; \
	else echo "fuzz-smoke: skipped ($(FUZZ_CC) not installed; mk/deps.sh installs it)"; fi

check: fuzz-smoke
