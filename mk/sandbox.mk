# sandbox: init/seccomp.h shares its name with libseccomp's <seccomp.h>, so
# seccomp.c is compiled with init/ on the quote path only.
SCF_CFLAGS = $(filter-out -Iinit,$(CFLAGS)) -iquote init
$(BUILD)/obj/seccomp.o: CFLAGS := $(SCF_CFLAGS)
$(BUILD)/san/obj/seccomp.o: CFLAGS := $(SCF_CFLAGS)

# The default seccomp profile, compiled to BPF at build time (init/gen/).
$(BUILD)/gen/scf_gen: init/gen/scf_gen.c $(BUILD)/obj/seccomp.o $(BUILD)/obj/err.o $(BUILD)/obj/util.o
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS)
$(BUILD)/gen/scf_default.c: $(BUILD)/gen/scf_gen
	$< > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/gen_scf_default.o: $(BUILD)/gen/scf_default.c
	$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/ainit $(BUILD)/san/ainit: $(BUILD)/obj/gen_scf_default.o

# ainit links libyaml, libseccomp and libcap statically where their archives
# are installed (Debian's -dev packages ship them): every shared object costs
# each ainit start its mapping and relocations. Measured with hyperfine,
# `ainit help`: median 0.86 ms dynamic, 0.67 ms static (bench/sandbox.sh
# counts it in every sandbox start). libc stays shared.
AINIT_STATIC_A := $(foreach l,libyaml.a libseccomp.a libcap.a,$(shell $(CC) -print-file-name=$(l)))
ifeq ($(words $(filter /%,$(AINIT_STATIC_A))),3)
$(BUILD)/ainit: PKG_LIBS := -Wl,-Bstatic -lyaml -lseccomp -lcap -Wl,-Bdynamic
endif
