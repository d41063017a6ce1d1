# sandbox: init/seccomp.h shares its name with libseccomp's <seccomp.h>, so
# seccomp.c is compiled with init/ on the quote path only.
SCF_CFLAGS = $(filter-out -Iinit,$(CFLAGS)) -iquote init
$(BUILD)/obj/seccomp.o: CFLAGS := $(SCF_CFLAGS)
$(BUILD)/san/obj/seccomp.o: CFLAGS := $(SCF_CFLAGS)
