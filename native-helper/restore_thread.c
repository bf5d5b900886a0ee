/* Threads, CPU state, signals and credentials (FORMAT.md §6.2, §6.3). Threads are created by the main
 * thread through an injected clone3 with set_tid, so each gets its original TID; being traced with
 * PTRACE_O_TRACECLONE, each new thread stops before it runs a single instruction. Then every thread,
 * from inside itself (these are per-task kernel states), registers its clear_child_tid pointer, robust
 * list, rseq area, sigaltstack and name and re-queues its pending signals. Last come the registers
 * (orig_rax = -1, so that the kernel does not treat the stop as an interrupted syscall; a syscall the
 * thread was in was already turned into "re-execute" or "-EINTR" by the dumper, FORMAT.md §6.3), the
 * xstate and the signal mask, all set with ptrace while the thread is stopped. */
#include <errno.h>
#include <linux/capability.h>
#include <linux/elf.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "restore.h"

#define REG_ORIG_RAX 15
#define REG_FS_BASE 21
#define REG_GS_BASE 22

static uint64_t host_xcr0(void)
{
	uint32_t lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (uint64_t)hi << 32 | lo;
}

/* Refuse, before anything exists, CPU state this CPU cannot hold. */
int rst_check_cpu(struct rst_image *img)
{
	uint64_t xcr0 = host_xcr0();

	for (int i = 0; i < img->nprocs; i++) {
		struct rst_proc *p = &img->procs[i];
		for (int k = 0; k < p->nthreads; k++) {
			struct rst_thread *t = &p->threads[k];
			uint64_t bv = 0;
			if (t->xstate_len >= 520)
				memcpy(&bv, t->xstate + 512, 8);
			if ((t->xfeatures | bv) & ~xcr0)
				return rst_fail(0, "thread %d: its xstate uses features %#llx that this CPU does not "
						"enable (XCR0 %#llx)", t->tid,
						(unsigned long long)((t->xfeatures | bv) & ~xcr0),
						(unsigned long long)xcr0);
			if (t->xstate_len && t->xstate_len < 576)
				return rst_fail(0, "thread %d: xstate of %zu bytes is shorter than an XSAVE header",
						t->tid, t->xstate_len);
		}
	}
	return 0;
}

static int rcall(struct rst_task *t, long *ret, long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		 uint64_t a5)
{
	return rst_syscall(t, ret, nr, a1, a2, a3, a4, a5, 0);
}

/* Runs a syscall whose failure is fatal, naming what it was for. */
static int must(struct rst_task *t, long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		const char *what)
{
	long r;

	if (rcall(t, &r, nr, a1, a2, a3, a4, 0))
		return -1;
	if (r < 0)
		return rst_fail(-r, "%s in thread %d", what, t->tid);
	return 0;
}

static void tid_holder(int tid, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(buf, len, "?");
	snprintf(path, sizeof path, "/proc/%d/comm", tid);
	f = fopen(path, "r");
	if (f) {
		if (fgets(buf, (int)len, f))
			buf[strcspn(buf, "\n")] = 0;
		fclose(f);
	}
}

static int create_thread(struct rst_image *img, struct rst_proc *p, int i)
{
	struct rst_task *t0 = &p->tasks[0];
	struct clone_args a;
	int32_t tid = p->threads[i].tid;
	long r;

	memset(&a, 0, sizeof a);
	a.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
	a.set_tid = t0->scratch + 1024;
	a.set_tid_size = 1;
	/* it never runs on this stack: it stops first and gets its own registers */
	a.stack = img->tramp + 8 * 4096;
	a.stack_size = 4096;
	if (rst_write_mem(p->pid, t0->scratch, &a, sizeof a) ||
	    rst_write_mem(p->pid, t0->scratch + 1024, &tid, sizeof tid))
		return -1;
	if (rcall(t0, &r, SYS_clone3, t0->scratch, sizeof a, 0, 0, 0))
		return -1;
	if (r < 0) {
		char holder[64];
		tid_holder(tid, holder, sizeof holder);
		return rst_fail(-r, "clone3 of thread %d of process %d%s%s", tid, p->pid,
				-r == EEXIST ? ", TID taken by " : "", -r == EEXIST ? holder : "");
	}
	if (r != tid)
		return rst_fail(0, "clone3 of thread %d of process %d gave TID %ld", tid, p->pid, r);
	return rst_task_wait_new(&p->tasks[i], tid, img);
}

static int set_altstack(struct rst_task *t, const struct rst_thread *th)
{
	struct { uint64_t sp; int32_t flags; int32_t pad; uint64_t size; } ss;

	memset(&ss, 0, sizeof ss);
	if (th->ss_flags & SS_DISABLE || !th->ss_size) {
		ss.flags = SS_DISABLE;
	} else {
		ss.sp = th->ss_sp;
		ss.size = th->ss_size;
		ss.flags = (int32_t)(th->ss_flags & ~SS_ONSTACK);
	}
	if (rst_write_mem(t->tid, t->scratch, &ss, sizeof ss))
		return -1;
	return must(t, SYS_sigaltstack, t->scratch, 0, 0, 0, "sigaltstack");
}

static int queue_signals(struct rst_task *t, int pid, int tid, const unsigned char **infos, int n)
{
	for (int i = 0; i < n; i++) {
		int32_t sig;
		long r;
		memcpy(&sig, infos[i], 4);
		if (rst_write_mem(t->tid, t->scratch + 2048, infos[i], 128))
			return -1;
		/* sent from inside the process, so the kernel accepts any si_code */
		if (tid ? rcall(t, &r, SYS_rt_tgsigqueueinfo, pid, tid, sig, t->scratch + 2048, 0)
			: rcall(t, &r, SYS_rt_sigqueueinfo, pid, sig, t->scratch + 2048, 0, 0))
			return -1;
		if (r < 0)
			return rst_fail(-r, "re-queueing pending signal %d in thread %d", sig, t->tid);
	}
	return 0;
}

static int thread_state(struct rst_proc *p, struct rst_task *t, const struct rst_thread *th)
{
	if (must(t, SYS_set_tid_address, th->clear_child_tid, 0, 0, 0, "set_tid_address"))
		return -1;
	if (th->robust_head &&
	    must(t, SYS_set_robust_list, th->robust_head, th->robust_len, 0, 0, "set_robust_list"))
		return -1;
	if (th->has_rseq &&
	    must(t, SYS_rseq, th->rseq_ptr, th->rseq_size, 0, th->rseq_sig, "registering the rseq area"))
		return -1;
	if (set_altstack(t, th))
		return -1;
	if (th->comm[0]) {
		if (rst_write_mem(t->tid, t->scratch, th->comm, sizeof th->comm) ||
		    must(t, SYS_prctl, PR_SET_NAME, t->scratch, 0, 0, "PR_SET_NAME"))
			return -1;
	}
	return queue_signals(t, p->pid, th->tid, th->pending, th->npending);
}

static int differs_from_helper(const struct rst_proc *p)
{
	uid_t r, e, s;
	gid_t gr, ge, gs;

	getresuid(&r, &e, &s);
	getresgid(&gr, &ge, &gs);
	return p->uid[0] != r || p->uid[1] != e || p->uid[2] != s || p->gid[0] != gr || p->gid[1] != ge ||
	       p->gid[2] != gs;
}

struct cap_data {
	uint32_t effective, permitted, inheritable;
};

/* The helper's own capability sets (the restored threads start with them). */
static void own_caps(uint64_t *eff, uint64_t *prm, uint64_t *inh, uint64_t *bnd)
{
	struct { uint32_t version; int pid; } hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct cap_data d[2];

	memset(d, 0, sizeof d);
	syscall(SYS_capget, &hdr, d);
	*eff = d[0].effective | (uint64_t)d[1].effective << 32;
	*prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	*inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
	*bnd = 0;
	for (int c = 0; c < 64; c++)
		if (prctl(PR_CAPBSET_READ, c) == 1)
			*bnd |= 1ull << c;
}

static int set_ids(struct rst_proc *p, struct rst_task *t)
{
	int32_t g[256];
	int n = p->ngroups < 256 ? p->ngroups : 256;

	for (int i = 0; i < n; i++)
		g[i] = (int32_t)p->groups[i];
	if (n && rst_write_mem(t->tid, t->scratch, g, n * sizeof *g))
		return -1;
	return must(t, SYS_setgroups, n, t->scratch, 0, 0, "setgroups") ||
	       must(t, SYS_setresgid, p->gid[0], p->gid[1], p->gid[2], 0, "setresgid") ||
	       must(t, SYS_setresuid, p->uid[0], p->uid[1], p->uid[2], 0, "setresuid") ? -1 : 0;
}

static int set_caps(struct rst_proc *p, struct rst_task *t)
{
	struct { uint32_t version; int pid; } hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct cap_data d[2] = {
		{ (uint32_t)p->cap_eff, (uint32_t)p->cap_prm, (uint32_t)p->cap_inh },
		{ (uint32_t)(p->cap_eff >> 32), (uint32_t)(p->cap_prm >> 32), (uint32_t)(p->cap_inh >> 32) },
	};

	if (rst_write_mem(t->tid, t->scratch, &hdr, sizeof hdr) ||
	    rst_write_mem(t->tid, t->scratch + 64, d, sizeof d) ||
	    must(t, SYS_capset, t->scratch, t->scratch + 64, 0, 0, "capset"))
		return -1;
	for (int c = 0; c < 64; c++)
		if ((p->cap_amb >> c & 1) &&
		    must(t, SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, "raising an ambient capability"))
			return -1;
	return 0;
}

/* The image's credentials, per thread (they are per task in the kernel), changed only where they differ
 * from the helper's; restore.c has already refused anything above the caller's own privilege. Order:
 * the bounding set while the thread may still drop from it, then the ids (keeping the permitted set
 * across a uid change from root when the image had capabilities), then the capability sets. */
static int thread_creds(struct rst_proc *p, struct rst_task *t)
{
	uint64_t eff, prm, inh, bnd;
	int ids = p->uid[0] >= 0 && differs_from_helper(p);
	int caps, keep;

	own_caps(&eff, &prm, &inh, &bnd);
	caps = eff != p->cap_eff || prm != p->cap_prm || inh != p->cap_inh || p->cap_amb;
	keep = ids && caps && p->cap_prm;
	for (int c = 0; c < 64 && p->cap_bnd; c++)
		if ((bnd >> c & 1) && !(p->cap_bnd >> c & 1) &&
		    must(t, SYS_prctl, PR_CAPBSET_DROP, c, 0, 0, "dropping a capability from the bounding set"))
			return -1;
	if (keep && must(t, SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, "PR_SET_KEEPCAPS"))
		return -1;
	if (ids && set_ids(p, t))
		return -1;
	if (caps && set_caps(p, t))
		return -1;
	if (keep && must(t, SYS_prctl, PR_SET_KEEPCAPS, 0, 0, 0, "PR_SET_KEEPCAPS"))
		return -1;
	if (p->no_new_privs && must(t, SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, "PR_SET_NO_NEW_PRIVS"))
		return -1;
	return 0;
}

static int set_xstate(struct rst_task *t, const struct rst_thread *th)
{
	unsigned char *buf;
	struct iovec iov;
	int rc = -1;

	if (!th->xstate_len)
		return 0;
	buf = calloc(1, 65536);
	if (!buf)
		return rst_fail(ENOMEM, "allocating an xstate buffer");
	iov.iov_base = buf;
	iov.iov_len = 65536;
	if (ptrace(PTRACE_GETREGSET, t->tid, NT_X86_XSTATE, &iov) < 0) {
		rst_fail(errno, "PTRACE_GETREGSET NT_X86_XSTATE of %d", t->tid);
		goto out;
	}
	if (th->xstate_len > iov.iov_len) {
		rst_fail(0, "thread %d: the image's xstate has %zu bytes, this kernel's %zu", th->tid,
			 th->xstate_len, iov.iov_len);
		goto out;
	}
	/* the kernel wants its own full size; components the image's header marks absent are reset */
	memcpy(buf, th->xstate, th->xstate_len);
	if (ptrace(PTRACE_SETREGSET, t->tid, NT_X86_XSTATE, &iov) < 0) {
		rst_fail(errno, "PTRACE_SETREGSET NT_X86_XSTATE (%zu bytes) of thread %d", iov.iov_len, th->tid);
		goto out;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

static int set_cpu(struct rst_task *t, const struct rst_thread *th)
{
	unsigned long long r[RST_REGS_WORDS];
	uint64_t mask = th->sigmask & ~((1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1)));

	for (int i = 0; i < RST_REGS_WORDS; i++)
		r[i] = th->regs[i];
	r[REG_ORIG_RAX] = (unsigned long long)-1;
	r[REG_FS_BASE] = th->fs_base;
	r[REG_GS_BASE] = th->gs_base;
	if (ptrace(PTRACE_SETREGS, t->tid, 0, r) < 0)
		return rst_fail(errno, "PTRACE_SETREGS of thread %d (rip %#llx)", th->tid, r[16]);
	if (set_xstate(t, th))
		return -1;
	if (ptrace(PTRACE_SETSIGMASK, t->tid, sizeof mask, &mask) < 0)
		return rst_fail(errno, "PTRACE_SETSIGMASK of thread %d", th->tid);
	return 0;
}

static int set_rlimits(struct rst_proc *p)
{
	for (int i = 0; i < RST_NRLIMIT; i++) {
		struct rlimit rl;
		if (!p->has_rlimit[i])
			continue;
		rl.rlim_cur = p->rlim[i][0];
		rl.rlim_max = p->rlim[i][1];
		/* raising a hard limit needs CAP_SYS_RESOURCE, which a container's root may lack: the
		 * process then keeps the restorer's limit, and we say so */
		if (prlimit(p->pid, i, &rl, NULL) < 0)
			rst_warn("process %d: prlimit %d to [%llu, %llu]: %s; it keeps the restorer's limit", p->pid, i,
				 (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max, rst_errname(errno));
	}
	return 0;
}

int rst_finish_process(struct rst_image *img, struct rst_proc *p)
{
	struct rst_task *t0 = &p->tasks[0];
	long r;

	/* while the process still has the helper's credentials (prlimit on another user's process needs
	 * privilege the helper may lack) */
	if (set_rlimits(p))
		return -1;
	for (int i = 1; i < p->nthreads; i++)
		if (create_thread(img, p, i))
			return -1;
	p->ntasks = p->nthreads;
	for (int i = p->nthreads - 1; i >= 0; i--)
		if (thread_state(p, &p->tasks[i], &p->threads[i]) || thread_creds(p, &p->tasks[i]))
			return -1;
	if (queue_signals(t0, p->pid, 0, p->pending_shared, p->npending_shared) ||
	    must(t0, SYS_prctl, PR_SET_PDEATHSIG, 0, 0, 0, "clearing the restore-time parent-death signal"))
		return -1;
	for (int i = 1; i < p->nthreads; i++)
		if (set_cpu(&p->tasks[i], &p->threads[i]))
			return -1;
	/* the last injected syscall removes the trampoline itself; the thread stops on the way out of it
	 * and never executes the next (now unmapped) instruction */
	if (rcall(t0, &r, SYS_munmap, img->tramp, img->tramp_size, 0, 0, 0))
		return -1;
	if (r < 0)
		return rst_fail(-r, "munmap of the trampoline area in %d", p->pid);
	return set_cpu(t0, &p->threads[0]);
}

int rst_detach_process(struct rst_image *img, struct rst_proc *p)
{
	int rc = 0;

	(void)img;
	/* a process that was stopped (job control) stops again as soon as it is let go */
	if (p->state == 'T' && kill(p->pid, SIGSTOP) < 0)
		rc = rst_fail(errno, "re-stopping process %d, which was stopped at dump time", p->pid);
	for (int i = p->ntasks - 1; i >= 0; i--)
		if (rst_task_detach(&p->tasks[i]))
			rc = -1;
	return rc;
}
