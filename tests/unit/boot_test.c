/* boot: the kernel command line's root=, rootfstype=, ro/rw, rootwait=
 * (boot_parse_root), which decide whether PID 1 runs the first stage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "boot.h"

static void no_root(void **state)
{
	(void)state;
	struct boot_root r;
	assert_int_equal(boot_parse_root("", &r), 0);
	assert_int_equal(boot_parse_root("console=ttyS0 panic=-1 quiet", &r), 0);
	assert_string_equal(r.what, "");
	/* rootfstype= alone, a word that only starts like root= */
	assert_int_equal(boot_parse_root("rootfstype=erofs rootflags=x ro", &r), 0);
	assert_int_equal(boot_parse_root("xroot=/dev/vda2 noroot=/dev/vda", &r), 0);
	/* a bad rootwait= without root= concerns nobody */
	assert_int_equal(boot_parse_root("rootwait=abc", &r), 0);
	/* after "--" the words are init's */
	assert_int_equal(boot_parse_root("quiet -- root=/dev/vda2", &r), 0);
}

static void partlabel(void **state)
{
	(void)state;
	struct boot_root r;
	assert_int_equal(boot_parse_root("console=tty0 console=ttyS0 panic=-1 quiet "
					 "root=PARTLABEL=AINIT_ROOT rootfstype=erofs ro",
					 &r),
			 1);
	assert_string_equal(r.what, "PARTLABEL=AINIT_ROOT");
	assert_string_equal(r.fstype, "erofs");
	assert_false(r.rw);
	assert_int_equal(r.wait_s, BOOT_ROOT_WAIT_S);
	/* /proc/cmdline ends in a newline */
	assert_int_equal(boot_parse_root("root=PARTLABEL=x\n", &r), 1);
	assert_string_equal(r.what, "PARTLABEL=x");
	assert_string_equal(r.fstype, "");
}

static void label_and_dev(void **state)
{
	(void)state;
	struct boot_root r;
	assert_int_equal(boot_parse_root("root=LABEL=AINIT_ROOT", &r), 1);
	assert_string_equal(r.what, "LABEL=AINIT_ROOT");
	assert_int_equal(boot_parse_root("root=/dev/vda2 rootfstype=squashfs", &r), 1);
	assert_string_equal(r.what, "/dev/vda2");
	assert_string_equal(r.fstype, "squashfs");
	assert_int_equal(boot_parse_root("root=/dev/nvme0n1p2", &r), 1);
	/* the last root= wins, as in the kernel */
	assert_int_equal(boot_parse_root("root=/dev/sda1 root=PARTLABEL=b", &r), 1);
	assert_string_equal(r.what, "PARTLABEL=b");
	/* quotes group and are dropped */
	assert_int_equal(boot_parse_root("root=\"PARTLABEL=my root\" ro", &r), 1);
	assert_string_equal(r.what, "PARTLABEL=my root");
	assert_int_equal(boot_parse_root("\"root=LABEL=a b\"", &r), 1);
	assert_string_equal(r.what, "LABEL=a b");
}

static void ro_rw_and_wait(void **state)
{
	(void)state;
	struct boot_root r;
	assert_int_equal(boot_parse_root("root=/dev/vda2", &r), 1);
	assert_false(r.rw); /* read-only unless rw */
	assert_int_equal(boot_parse_root("root=/dev/vda2 rw", &r), 1);
	assert_true(r.rw);
	assert_int_equal(boot_parse_root("rw root=/dev/vda2 ro", &r), 1);
	assert_false(r.rw);
	assert_int_equal(boot_parse_root("root=/dev/vda2 rootwait=5", &r), 1);
	assert_int_equal(r.wait_s, 5);
	/* plain rootwait ("forever" to the kernel) is bounded here */
	assert_int_equal(boot_parse_root("root=/dev/vda2 rootwait", &r), 1);
	assert_int_equal(r.wait_s, BOOT_ROOT_WAIT_S);
	assert_int_equal(boot_parse_root("root=/dev/vda2 rootwait=3600", &r), 1);
	assert_int_equal(r.wait_s, 3600);
}

static void unusable(void **state)
{
	(void)state;
	struct boot_root r;
	static const char *const bad[] = {
		"root=UUID=1234-5678",
		"root=PARTUUID=0fc63daf-8483-4772-8e79-3d69d8477de4",
		"root=fe02",
		"root=8:2",
		"root=PARTLABEL=",
		"root=LABEL=",
		"root=/dev/",
		"root=/dev/../etc/x",
		"root=vda2",
		"root=/dev/vda2 rootfstype=",
		"root=/dev/vda2 rootfstype=ERO/FS",
		"root=/dev/vda2 rootfstype=averyveryveryveryverylongfstypename",
		"root=/dev/vda2 rootwait=0",
		"root=/dev/vda2 rootwait=-1",
		"root=/dev/vda2 rootwait=5s",
		"root=/dev/vda2 rootwait=3601",
		"root=/dev/vda2 rootwait=99999999999999999999",
		"rootfstype=BAD root=/dev/vda2",
		"rootwait=x root=PARTLABEL=a",
		"root=PARTLABEL=a root=UUID=b",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = boot_parse_root(bad[i], &r);
		if (rc != -EINVAL)
			fail_msg("\"%s\": %d, not -EINVAL", bad[i], rc);
	}
	/* the root= as given is kept for the error message */
	assert_int_equal(boot_parse_root("root=UUID=1234", &r), -EINVAL);
	assert_string_equal(r.what, "UUID=1234");
	/* too long for the buffer: refused, never cut short and used */
	char big[600] = "root=PARTLABEL=";
	memset(big + strlen(big), 'a', 400);
	big[415] = '\0';
	assert_int_equal(boot_parse_root(big, &r), -EINVAL);
	char huge[1200] = "root=/dev/";
	memset(huge + strlen(huge), 'b', 1000);
	huge[1010] = '\0';
	assert_int_equal(boot_parse_root(huge, &r), -EINVAL);
}

/* modules.dep as depmod writes it (the small initramfs's, and a made-up
 * module with a chain of dependencies). */
static const char DEP[] =
	"kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko "
	"kernel/drivers/virtio/virtio_ring.ko\n"
	"kernel/drivers/virtio/virtio_ring.ko:\n"
	"kernel/drivers/virtio/virtio.ko:\n"
	"kernel/drivers/misc/pvpanic/pvpanic-pci.ko: kernel/drivers/misc/pvpanic/pvpanic.ko\n"
	"kernel/drivers/misc/pvpanic/pvpanic.ko:\n"
	"kernel/fs/erofs/erofs.ko: kernel/lib/libcrc32c.ko\n"
	"kernel/lib/libcrc32c.ko:\n"
	"kernel/a/top.ko: kernel/a/mid.ko kernel/a/low.ko\n"
	"kernel/a/virtio_blkx.ko:\n"
	"kernel/a/zipped.ko.xz:"; /* no newline at the end */

static void plan_is(const char *name, const char *const *want)
{
	struct boot_modpath p[BOOT_MODDEP_MAX + 1];
	int n = boot_moddep_plan(DEP, name, p, BOOT_MODDEP_MAX + 1), k = 0;
	while (want[k])
		k++;
	if (n != k)
		fail_msg("%s: %d modules, want %d", name, n, k);
	for (int i = 0; i < n; i++) {
		char got[128];
		snprintf(got, sizeof got, "%.*s", (int)p[i].len, p[i].p);
		assert_string_equal(got, want[i]);
	}
}

static void moddep(void **state)
{
	(void)state;
	/* dependencies first, the farthest (listed last) first of all */
	plan_is("virtio_blk", (const char *const[]){"kernel/drivers/virtio/virtio_ring.ko",
						     "kernel/drivers/virtio/virtio.ko",
						     "kernel/drivers/block/virtio_blk.ko", NULL});
	plan_is("top", (const char *const[]){"kernel/a/low.ko", "kernel/a/mid.ko", "kernel/a/top.ko",
					     NULL});
	plan_is("virtio", (const char *const[]){"kernel/drivers/virtio/virtio.ko", NULL});
	/* '-' and '_' are the same in module names, either way round */
	plan_is("pvpanic_pci", (const char *const[]){"kernel/drivers/misc/pvpanic/pvpanic.ko",
						      "kernel/drivers/misc/pvpanic/pvpanic-pci.ko",
						      NULL});
	plan_is("pvpanic-pci", (const char *const[]){"kernel/drivers/misc/pvpanic/pvpanic.ko",
						      "kernel/drivers/misc/pvpanic/pvpanic-pci.ko",
						      NULL});
	plan_is("erofs", (const char *const[]){"kernel/lib/libcrc32c.ko", "kernel/fs/erofs/erofs.ko",
					       NULL});
	/* a compressed module, the last line without its newline */
	plan_is("zipped", (const char *const[]){"kernel/a/zipped.ko.xz", NULL});
	/* a name is a whole name: no prefix of one, no extension-less match */
	plan_is("virtio_bl", (const char *const[]){NULL});
	plan_is("squashfs", (const char *const[]){NULL});
	plan_is("kernel", (const char *const[]){NULL});
	plan_is("", (const char *const[]){NULL});
	struct boot_modpath p[2];
	assert_int_equal(boot_moddep_plan("", "erofs", p, 2), 0);
	assert_int_equal(boot_moddep_plan("garbage without colon\n\n", "garbage", p, 2), 0);
	/* not enough room: refused, not cut short */
	assert_int_equal(boot_moddep_plan(DEP, "top", p, 2), -E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(no_root),
		cmocka_unit_test(partlabel),
		cmocka_unit_test(label_and_dev),
		cmocka_unit_test(ro_rw_and_wait),
		cmocka_unit_test(unusable),
		cmocka_unit_test(moddep),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
