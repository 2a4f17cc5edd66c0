// SPDX-License-Identifier: GPL-2.0
/*
 * A QEMU TCG plugin for `make bench` part `insns` (tests/bench/run): counts the guest
 * instructions a vCPU executes inside the windows rust/bench.rs marks, so that each timed run
 * of the per-packet bench also has an exact, placement-independent count of the work done.
 *
 * Markers (rust/bench.rs `mark`): 66 87 db (xchg %bx,%bx) starts counting on the vCPU that
 * executes it, 66 87 c9 (xchg %cx,%cx) stops, 66 87 d2 (xchg %dx,%dx) reports. A report
 * writes to the file named by the `out=` argument
 *     window K INSNS
 *     tb VADDR NINSNS EXECS            (per translated block executed in the window)
 * and resets the window. Blocks are counted whole when they start inside a window: the block
 * holding a Start marker is not counted, the one holding a Stop is, up to a block's worth of
 * instructions per sub-batch either way, the same for every target.
 *
 * Declarations of QEMU's plugin API (version 1, QEMU 4.2 to 8.x; Debian 12's QEMU 7.2 has no
 * header package) are written out below from its documentation.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct {
	const char *target_name;
	struct {
		int min, cur;
	} version;
	bool system_emulation;
	union {
		struct {
			int smp_vcpus, max_vcpus;
		} system;
	};
} qemu_info_t;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu, void *udata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *udata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
					  enum qemu_plugin_cb_flags flags, void *udata);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
					    qemu_plugin_vcpu_udata_cb_t cb,
					    enum qemu_plugin_cb_flags flags, void *udata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *udata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);

#define EXPORT __attribute__((visibility("default")))
EXPORT int qemu_plugin_version = 1;

#define MAX_VCPUS 64

/* One translation of a block; a block translated again gets another (merged by address in
 * the report's reader). */
struct block {
	uint64_t vaddr;
	uint64_t n;
	uint64_t execs; /* in the current window */
	bool listed;	/* in `touched` */
};

static FILE *out;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool on[MAX_VCPUS];
static uint64_t insns;
static unsigned long window;
static struct block **touched;
static size_t ntouched, captouched;

enum mark { START = 1, STOP, REPORT };

static void block_exec(unsigned int vcpu, void *udata)
{
	struct block *b = udata;

	if (vcpu >= MAX_VCPUS || !on[vcpu])
		return;
	pthread_mutex_lock(&lock);
	insns += b->n;
	b->execs++;
	if (!b->listed) {
		if (ntouched == captouched) {
			size_t cap = captouched ? 2 * captouched : 4096;
			struct block **t = realloc(touched, cap * sizeof(*t));

			if (!t) {
				pthread_mutex_unlock(&lock);
				return;
			}
			touched = t;
			captouched = cap;
		}
		touched[ntouched++] = b;
		b->listed = true;
	}
	pthread_mutex_unlock(&lock);
}

static void mark_exec(unsigned int vcpu, void *udata)
{
	enum mark m = (enum mark)(uintptr_t)udata;

	if (vcpu >= MAX_VCPUS)
		return;
	switch (m) {
	case START:
		on[vcpu] = true;
		break;
	case STOP:
		on[vcpu] = false;
		break;
	case REPORT:
		pthread_mutex_lock(&lock);
		fprintf(out, "window %lu %" PRIu64 "\n", window++, insns);
		for (size_t i = 0; i < ntouched; i++) {
			struct block *b = touched[i];

			fprintf(out, "tb %" PRIx64 " %" PRIu64 " %" PRIu64 "\n", b->vaddr, b->n,
				b->execs);
			b->execs = 0;
			b->listed = false;
		}
		ntouched = 0;
		insns = 0;
		fflush(out);
		pthread_mutex_unlock(&lock);
		break;
	}
}

static enum mark marker(const struct qemu_plugin_insn *insn)
{
	const unsigned char *d = qemu_plugin_insn_data(insn);

	if (qemu_plugin_insn_size(insn) != 3 || d[0] != 0x66 || d[1] != 0x87)
		return 0;
	switch (d[2]) {
	case 0xdb:
		return START;
	case 0xc9:
		return STOP;
	case 0xd2:
		return REPORT;
	}
	return 0;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t n = qemu_plugin_tb_n_insns(tb);
	struct block *b = calloc(1, sizeof(*b));

	(void)id;
	if (!b)
		return;
	b->vaddr = qemu_plugin_tb_vaddr(tb);
	b->n = n;
	qemu_plugin_register_vcpu_tb_exec_cb(tb, block_exec, QEMU_PLUGIN_CB_NO_REGS, b);
	for (size_t i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		enum mark m = marker(insn);

		if (m)
			qemu_plugin_register_vcpu_insn_exec_cb(insn, mark_exec, QEMU_PLUGIN_CB_NO_REGS,
							       (void *)(uintptr_t)m);
	}
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
	(void)id;
	(void)udata;
	if (out)
		fclose(out);
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
	const char *path = NULL;

	(void)info;
	for (int i = 0; i < argc; i++)
		if (!strncmp(argv[i], "out=", 4))
			path = argv[i] + 4;
	if (!path) {
		fprintf(stderr, "insns plugin: needs out=FILE\n");
		return -1;
	}
	out = fopen(path, "w");
	if (!out) {
		perror(path);
		return -1;
	}
	qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;
}
