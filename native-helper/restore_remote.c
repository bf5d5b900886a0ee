/* Running syscalls inside a stopped thread of a process being restored. Every restored process
 * inherits, from the helper, a trampoline area whose first bytes are a `syscall` instruction (see
 * restore.c). To run a syscall we point rip at it, load rax and the argument registers, and let the
 * thread go with PTRACE_SYSCALL: it stops at syscall entry and again at syscall exit, where rax holds
 * the result. No breakpoint and no signal is involved, so no signal disposition or mask of the tracee
 * is touched (an int3 trap would reset a blocked SIGTRAP's handler to SIG_DFL).
 *
 * The dump side has its own remote-syscall module (remote.c) for tracees that run their own code; the
 * restorer's tracees only ever run the trampoline, and they must never have a signal forced on them,
 * hence this small separate module. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>

#include "restore.h"

#define RST_RAX 10
#define RST_RDX 12
#define RST_RSI 13
#define RST_RDI 14
#define RST_ORIG_RAX 15
#define RST_RIP 16
#define RST_EFLAGS 18
#define RST_RSP 19
#define RST_R10 7
#define RST_R8 9
#define RST_R9 8

static const char *describe_status(int st, char *buf, size_t len)
{
	if (WIFEXITED(st))
		snprintf(buf, len, "it exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "it was killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else if (WIFSTOPPED(st))
		snprintf(buf, len, "it stopped with signal %d (%s), event %d", WSTOPSIG(st) & 0x7f,
			 strsignal(WSTOPSIG(st) & 0x7f), st >> 16);
	else
		snprintf(buf, len, "wait status %#x", st);
	return buf;
}

/* Waits for the next stop of tid; 0 with *status, or -1 if it is gone. */
static int wait_stop(pid_t tid, int *status, const char *what)
{
	char buf[128];

	for (;;) {
		pid_t r = waitpid(tid, status, __WALL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return rst_fail(errno, "waiting for thread %d (%s)", tid, what);
		if (WIFSTOPPED(*status))
			return 0;
		return rst_fail(0, "thread %d vanished while %s: %s", tid, what,
				describe_status(*status, buf, sizeof buf));
	}
}

static void task_init(struct rst_task *t, pid_t tid, const struct rst_image *img)
{
	memset(t, 0, sizeof *t);
	t->tid = tid;
	t->tramp = img->tramp;
	/* page 0: code; pages 1..7: per-call scratch; stack at the top of the first 16 pages */
	t->scratch = img->tramp + 4096;
	t->scratch_size = 7 * 4096;
	t->stack_top = img->tramp + 16 * 4096 - 64;
}

/* Waits until tid sits in a ptrace-stop we caused (PTRACE_EVENT_STOP), passing nothing on. */
static int wait_event_stop(struct rst_task *t, const char *what)
{
	int st;

	for (;;) {
		if (wait_stop(t->tid, &st, what))
			return -1;
		if (st >> 16 == PTRACE_EVENT_STOP)
			break;
		/* a signal-delivery-stop (signals should all be blocked): suppress it and wait for ours */
		if (ptrace(PTRACE_CONT, t->tid, 0, 0) < 0)
			return rst_fail(errno, "resuming thread %d while %s", t->tid, what);
	}
	if (ptrace(PTRACE_GETREGS, t->tid, 0, t->base_regs) < 0)
		return rst_fail(errno, "PTRACE_GETREGS of thread %d", t->tid);
	t->attached = 1;
	return 0;
}

int rst_task_seize(struct rst_task *t, pid_t tid, const struct rst_image *img)
{
	long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE;

	task_init(t, tid, img);
	if (ptrace(PTRACE_SEIZE, tid, 0, opts) < 0)
		return rst_fail(errno, "PTRACE_SEIZE of process %d", tid);
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
		return rst_fail(errno, "PTRACE_INTERRUPT of process %d", tid);
	return wait_event_stop(t, "stopping it");
}

int rst_task_wait_new(struct rst_task *t, pid_t tid, const struct rst_image *img)
{
	task_init(t, tid, img);
	return wait_event_stop(t, "waiting for the new thread's first stop");
}

static int resume_to_syscall_stop(struct rst_task *t, long nr, int *st)
{
	if (ptrace(PTRACE_SYSCALL, t->tid, 0, 0) < 0)
		return rst_fail(errno, "PTRACE_SYSCALL of thread %d (syscall %ld)", t->tid, nr);
	for (;;) {
		if (wait_stop(t->tid, st, "running an injected syscall"))
			return -1;
		if (WSTOPSIG(*st) == (SIGTRAP | 0x80))
			return 0;
		if (*st >> 8 == (SIGTRAP | PTRACE_EVENT_CLONE << 8))
			return 0;
		/* anything else (a stray signal) is not for the tracee now: suppress it */
		if (ptrace(PTRACE_SYSCALL, t->tid, 0, 0) < 0)
			return rst_fail(errno, "PTRACE_SYSCALL of thread %d (syscall %ld)", t->tid, nr);
	}
}

int rst_syscall(struct rst_task *t, long *ret, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
		uint64_t a4, uint64_t a5, uint64_t a6)
{
	unsigned long long r[RST_REGS_WORDS];
	int st;

	memcpy(r, t->base_regs, sizeof r);
	r[RST_RIP] = t->tramp;
	r[RST_RAX] = nr;
	r[RST_ORIG_RAX] = (unsigned long long)-1; /* no syscall restart on the way out of this stop */
	r[RST_RDI] = a1;
	r[RST_RSI] = a2;
	r[RST_RDX] = a3;
	r[RST_R10] = a4;
	r[RST_R8] = a5;
	r[RST_R9] = a6;
	r[RST_RSP] = t->stack_top;
	r[RST_EFLAGS] &= ~0x500ull; /* TF and DF */
	if (ptrace(PTRACE_SETREGS, t->tid, 0, r) < 0)
		return rst_fail(errno, "PTRACE_SETREGS of thread %d (syscall %ld)", t->tid, nr);
	if (resume_to_syscall_stop(t, nr, &st))   /* entry */
		return -1;
	if (resume_to_syscall_stop(t, nr, &st))   /* exit, or the clone event first */
		return -1;
	if (st >> 8 == (SIGTRAP | PTRACE_EVENT_CLONE << 8) && resume_to_syscall_stop(t, nr, &st))
		return -1;
	if (ptrace(PTRACE_GETREGS, t->tid, 0, r) < 0)
		return rst_fail(errno, "PTRACE_GETREGS of thread %d after syscall %ld", t->tid, nr);
	if (r[RST_RIP] != t->tramp + 2)
		return rst_fail(0, "thread %d: injected syscall %ld ended at rip %#llx, not at the trampoline",
				t->tid, nr, r[RST_RIP]);
	*ret = (long)r[RST_RAX];
	return 0;
}

int rst_write_mem(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	struct iovec local = { (void *)buf, len }, remote = { (void *)addr, len };
	ssize_t n = process_vm_writev(pid, &local, 1, &remote, 1, 0);

	if (n < 0)
		return rst_fail(errno, "process_vm_writev of %zu bytes at %#llx in %d", len,
				(unsigned long long)addr, pid);
	if ((size_t)n != len)
		return rst_fail(0, "process_vm_writev at %#llx in %d: short write (%zd of %zu bytes)",
				(unsigned long long)addr, pid, n, len);
	return 0;
}

int rst_read_mem(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)addr, len };
	ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);

	if (n < 0 || (size_t)n != len)
		return rst_fail(n < 0 ? errno : 0, "process_vm_readv of %zu bytes at %#llx in %d", len,
				(unsigned long long)addr, pid);
	return 0;
}

int rst_task_detach(struct rst_task *t)
{
	if (!t->attached)
		return 0;
	t->attached = 0;
	if (ptrace(PTRACE_DETACH, t->tid, 0, 0) < 0)
		return rst_fail(errno, "PTRACE_DETACH of thread %d", t->tid);
	return 0;
}
