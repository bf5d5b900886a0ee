/* See thread.h. */
#include "thread.h"

#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "errmsg.h"
#include "proc.h"

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
#ifndef PR_GET_TID_ADDRESS
#define PR_GET_TID_ADDRESS 40
#endif
#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

/* Large enough for every XSAVE layout so far (AMX tiles included: about 11 KiB). */
#define XSTATE_MAX (64u << 10)
/* ptrace's XSAVE image keeps XCR0 (the enabled feature mask) in the first 8 of the FXSAVE area's
 * software-usable bytes (asm/user.h, USER_XSTATE_XCR0_WORD); signal frames use that area differently. */
#define XSTATE_XCR0_OFFSET 464

#define USER_CS_64 0x33

#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516

struct rseq_config {
	uint64_t rseq_abi_pointer;
	uint32_t rseq_abi_size;
	uint32_t signature;
	uint32_t flags;
	uint32_t pad;
};

/* A thread stopped inside an interrupted syscall has rax = -ERESTART*; the kernel would rewind and
 * re-execute the syscall when it resumes. The image records the registers as they will be after
 * that decision, so a restorer only has to set them (with orig_rax = -1). */
static const char *restart_fixup(struct user_regs_struct *r)
{
	long rax = (long)r->rax;

	if ((long)r->orig_rax < 0)
		return "none";
	if (rax == -ERESTARTSYS || rax == -ERESTARTNOINTR || rax == -ERESTARTNOHAND) {
		r->rax = r->orig_rax;
		r->rip -= 2;
		return "restart";
	}
	if (rax == -ERESTART_RESTARTBLOCK) {
		/* restart_syscall() needs kernel state (the restart block) that does not survive a
		 * restore: report the interruption instead. */
		r->rax = (unsigned long long)-EINTR;
		return "eintr";
	}
	return "none";
}

/* A CPU (or VM) without XSAVE: the 512-byte FXSAVE area is all the FPU state there is. */
static int capture_fxsave(pid_t tid, struct thread_state *ts)
{
	ts->xstate = calloc(1, sizeof(struct user_fpregs_struct));
	if (!ts->xstate)
		return cryo_fail(ENOMEM, "allocate FPU state buffer");
	if (ptrace(PTRACE_GETFPREGS, tid, NULL, ts->xstate) < 0)
		return cryo_fail(errno, "PTRACE_GETFPREGS thread %d", tid);
	ts->xstate_len = sizeof(struct user_fpregs_struct);
	ts->xfeatures = 3; /* x87 | SSE */
	return 0;
}

static int capture_xstate(pid_t tid, struct thread_state *ts)
{
	unsigned char *buf = malloc(XSTATE_MAX);
	struct iovec iov = { buf, XSTATE_MAX };

	if (!buf)
		return cryo_fail(ENOMEM, "allocate xstate buffer");
	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov) < 0) {
		int err = errno;
		free(buf);
		if (err == ENODEV || err == EINVAL || err == EIO)
			return capture_fxsave(tid, ts);
		return cryo_fail(err, "PTRACE_GETREGSET NT_X86_XSTATE thread %d", tid);
	}
	unsigned char *fit = realloc(buf, iov.iov_len);
	ts->xstate = fit ? fit : buf;
	ts->xstate_len = iov.iov_len;
	if (iov.iov_len >= XSTATE_XCR0_OFFSET + 8)
		memcpy(&ts->xfeatures, ts->xstate + XSTATE_XCR0_OFFSET, 8);
	return 0;
}

int peek_siginfo(pid_t tid, int shared, unsigned char **out, size_t *count)
{
	unsigned char *all = NULL;
	size_t n = 0;
	unsigned char chunk[32 * SIGINFO_SIZE];

	for (;;) {
		struct __ptrace_peeksiginfo_args args = {
			.off = n,
			.flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0,
			.nr = 32,
		};
		long got = ptrace(PTRACE_PEEKSIGINFO, tid, &args, chunk);
		if (got < 0) {
			free(all);
			return cryo_fail(errno, "PTRACE_PEEKSIGINFO%s thread %d", shared ? " (shared)" : "", tid);
		}
		if (got == 0)
			break;
		unsigned char *p = realloc(all, (n + got) * SIGINFO_SIZE);
		if (!p) {
			free(all);
			return cryo_fail(ENOMEM, "collect pending signals of thread %d", tid);
		}
		all = p;
		memcpy(all + n * SIGINFO_SIZE, chunk, got * SIGINFO_SIZE);
		n += got;
	}
	*out = all;
	*count = n;
	return 0;
}

static int capture_rseq(pid_t tid, struct thread_state *ts)
{
	struct rseq_config rc;
	long n = ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, (void *)sizeof rc, &rc);

	if (n < 0) {
		if (errno == EIO || errno == EINVAL) /* kernel without rseq: nothing to record */
			return 0;
		return cryo_fail(errno, "PTRACE_GET_RSEQ_CONFIGURATION thread %d", tid);
	}
	if (rc.rseq_abi_pointer) {
		ts->have_rseq = 1;
		ts->rseq_ptr = rc.rseq_abi_pointer;
		ts->rseq_size = rc.rseq_abi_size;
		ts->rseq_sig = rc.signature;
	}
	return 0;
}

static int capture_robust_list(pid_t tid, struct thread_state *ts)
{
	void *head = NULL;
	size_t len = 0;

	if (syscall(SYS_get_robust_list, tid, &head, &len) < 0)
		return cryo_fail(errno, "get_robust_list thread %d", tid);
	ts->robust_head = (uint64_t)(uintptr_t)head;
	ts->robust_len = len;
	return 0;
}

static int read_comm(pid_t pid, pid_t tid, char **comm)
{
	size_t len;

	if (proc_readf(comm, &len, "/proc/%d/task/%d/comm", pid, tid))
		return -1;
	if (len && (*comm)[len - 1] == '\n')
		(*comm)[len - 1] = 0;
	return 0;
}

int thread_capture(pid_t pid, const struct frozen_thread *ft, struct thread_state *ts)
{
	pid_t tid = ft->tid;

	memset(ts, 0, sizeof *ts);
	ts->tid = tid;
	ts->state = ft->state;
	if (read_comm(pid, tid, &ts->comm) || pt_getregs(tid, &ts->regs))
		return -1;
	/* The image records x86_64 state, and injected syscalls use the 64-bit ABI. */
	if (ts->regs.cs != USER_CS_64)
		return cryo_fail(0, "thread %d runs in 32-bit mode (cs 0x%llx); only x86_64 processes can be dumped",
				 tid, ts->regs.cs);
	ts->restart = restart_fixup(&ts->regs);
	if (capture_xstate(tid, ts) || pt_getsigmask(tid, &ts->sigmask) ||
	    peek_siginfo(tid, 0, &ts->pending, &ts->npending) || capture_rseq(tid, ts) ||
	    capture_robust_list(tid, ts))
		return -1;
	return 0;
}

int thread_inject(struct remote *r, struct thread_state *ts)
{
	unsigned long scratch = remote_scratch(r);
	uint64_t addr;
	unsigned char ss[24]; /* stack_t: ss_sp, ss_flags (+4 padding), ss_size */
	long ret;

	if (!scratch)
		return -1;
	if (remote_syscall(r, &ret, SYS_prctl, PR_GET_TID_ADDRESS, (long)scratch, 0, 0, 0, 0))
		return -1;
	if (ret == -EINVAL) {
		/* A kernel without CONFIG_CHECKPOINT_RESTORE has no PR_GET_TID_ADDRESS: unknown (nil). */
		ts->have_clear_child_tid = 0;
	} else if (ret < 0) {
		return cryo_fail((int)-ret, "injected prctl(PR_GET_TID_ADDRESS) in thread %d", ts->tid);
	} else {
		if (remote_read(ts->tid, scratch, &addr, sizeof addr))
			return -1;
		ts->clear_child_tid = addr;
		ts->have_clear_child_tid = 1;
	}
	if (remote_syscall(r, &ret, SYS_sigaltstack, 0, (long)scratch, 0, 0, 0, 0))
		return -1;
	if (ret < 0)
		return cryo_fail((int)-ret, "injected sigaltstack(NULL, &ss) in thread %d", ts->tid);
	if (remote_read(ts->tid, scratch, ss, sizeof ss))
		return -1;
	int flags;
	memcpy(&ts->ss_sp, ss, 8);
	memcpy(&flags, ss + 8, 4);
	memcpy(&ts->ss_size, ss + 16, 8);
	ts->ss_flags = flags;
	return 0;
}

static void encode_pending(struct mpw *w, const unsigned char *p, size_t n)
{
	mpw_array(w);
	for (size_t i = 0; i < n; i++)
		mpw_bin(w, p + i * SIGINFO_SIZE, SIGINFO_SIZE);
	mpw_end(w);
}

void thread_encode(struct mpw *w, const struct thread_state *ts)
{
	char state[2] = { ts->state, 0 };

	mpw_map(w);
	mpw_kint(w, "tid", ts->tid);
	mpw_ktext(w, "comm", ts->comm);
	mpw_kstr(w, "state", state);
	mpw_str(w, "regs");
	mpw_bin(w, &ts->regs, sizeof ts->regs);
	mpw_kstr(w, "restart", ts->restart);
	mpw_str(w, "xstate");
	mpw_bin(w, ts->xstate, ts->xstate_len);
	mpw_kuint(w, "xfeatures", ts->xfeatures);
	mpw_kuint(w, "fsBase", ts->regs.fs_base);
	mpw_kuint(w, "gsBase", ts->regs.gs_base);
	mpw_str(w, "sigmask");
	mpw_u64bin(w, ts->sigmask);
	mpw_str(w, "pending");
	encode_pending(w, ts->pending, ts->npending);
	mpw_str(w, "clearChildTid");
	if (ts->have_clear_child_tid)
		mpw_uint(w, ts->clear_child_tid);
	else
		mpw_nil(w);
	mpw_str(w, "robustList");
	mpw_map(w);
	mpw_kuint(w, "head", ts->robust_head);
	mpw_kuint(w, "len", ts->robust_len);
	mpw_end(w);
	mpw_str(w, "rseq");
	if (ts->have_rseq) {
		mpw_map(w);
		mpw_kuint(w, "ptr", ts->rseq_ptr);
		mpw_kuint(w, "size", ts->rseq_size);
		mpw_kuint(w, "signature", ts->rseq_sig);
		mpw_end(w);
	} else {
		mpw_nil(w);
	}
	mpw_str(w, "sigaltstack");
	mpw_map(w);
	mpw_kuint(w, "sp", ts->ss_sp);
	mpw_kuint(w, "size", ts->ss_size);
	mpw_kint(w, "flags", ts->ss_flags);
	mpw_end(w);
	mpw_end(w);
}

void thread_free(struct thread_state *ts)
{
	free(ts->comm);
	free(ts->xstate);
	free(ts->pending);
	memset(ts, 0, sizeof *ts);
}
