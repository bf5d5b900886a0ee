/* One stopped thread of a process being restored. Every restored process inherits, from the helper,
 * a trampoline area whose first bytes are a `syscall` instruction (see restore.c); its syscalls run
 * there through remote_run (remote.c, shared with the dump): rip at the trampoline, PTRACE_SYSCALL to
 * the entry and the exit stop, rax the result. No breakpoint and no signal is involved, so no signal
 * disposition or mask of the tracee is touched (an int3 trap would reset a blocked SIGTRAP's handler
 * to SIG_DFL), and a signal-delivery-stop met on the way is suppressed, never passed on: these
 * tracees must never have a signal forced or delivered on them while they run the trampoline. */
#include <errno.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>

#include "ptrace.h"
#include "remote.h"
#include "restore.h"

_Static_assert(sizeof(struct user_regs_struct) == RST_REGS_WORDS * 8, "base_regs is a user_regs_struct");

/* Waits for the next stop of tid; 0 with *status, or -1 if it is gone. */
static int wait_stop(pid_t tid, int *status, const char *what)
{
	char buf[128];

	if (pt_wait_status(tid, status, 0))
		return rst_fail(errno, "waiting for thread %d (%s)", tid, what);
	if (WIFSTOPPED(*status))
		return 0;
	return rst_fail(0, "thread %d vanished while %s: %s", tid, what,
			remote_describe_status(*status, buf, sizeof buf));
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

int rst_syscall(struct rst_task *t, long *ret, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
		uint64_t a4, uint64_t a5, uint64_t a6)
{
	const long args[6] = { (long)a1, (long)a2, (long)a3, (long)a4, (long)a5, (long)a6 };
	struct user_regs_struct base;
	struct remote_fault f;

	memcpy(&base, t->base_regs, sizeof base);
	base.rsp = t->stack_top;
	if (remote_run(t->tid, t->tramp, &base, REMOTE_SUPPRESS_SIGNALS | REMOTE_UNBOUNDED, nr, args, ret, &f))
		return rst_fail(f.err, "%s", f.msg);
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
