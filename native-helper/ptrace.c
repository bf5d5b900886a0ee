/* See ptrace.h. */
#include "ptrace.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "errmsg.h"
#include "proc.h"

/* A seized thread delivering signals in a loop could keep us from ever seeing the interrupt stop. */
#define MAX_SIGNALS_PASSED 256
/* Passes over the tree before we give up on a target that keeps creating threads or children. */
#define MAX_FREEZE_PASSES 1000

int pt_seize(pid_t tid, unsigned long options)
{
	if (ptrace(PTRACE_SEIZE, tid, NULL, (void *)options) < 0)
		return cryo_fail(errno, "PTRACE_SEIZE thread %d", tid);
	return 0;
}

static int report_exit(pid_t tid, int status)
{
	errno = ESRCH;
	if (WIFEXITED(status))
		return cryo_fail(0, "thread %d exited (status %d) while frozen", tid, WEXITSTATUS(status));
	return cryo_fail(0, "thread %d was killed by signal %d while frozen", tid, WTERMSIG(status));
}

static int sigchld_blocked(void)
{
	sigset_t cur;

	return sigprocmask(SIG_BLOCK, NULL, &cur) == 0 && sigismember(&cur, SIGCHLD);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* With SIGCHLD blocked (cryo-helper dump blocks it), every ptrace-stop of a tracee leaves a SIGCHLD
 * pending: poll waitpid and sleep in sigtimedwait between polls, so the wait can time out. A caller
 * that has not blocked SIGCHLD gets a plain blocking waitpid. */
int pt_wait_status(pid_t tid, int *status, int bounded)
{
	int timed = bounded && sigchld_blocked();
	long deadline = now_ms() + PT_WAIT_TIMEOUT_MS;
	sigset_t chld;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		pid_t r = waitpid(tid, status, __WALL | (timed ? WNOHANG : 0));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == tid)
			return 0;
		long left = deadline - now_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		struct timespec ts = { left / 1000, (left % 1000) * 1000000L };
		sigtimedwait(&chld, NULL, &ts);
	}
}

int pt_wait(pid_t tid, int *status)
{
	if (pt_wait_status(tid, status, 1)) {
		if (errno == ETIMEDOUT)
			return cryo_fail(0, "thread %d did not stop within %d s (state D, or a vfork parent?)", tid,
					 PT_WAIT_TIMEOUT_MS / 1000);
		return cryo_fail(errno, "waitpid thread %d", tid);
	}
	if (WIFEXITED(*status) || WIFSIGNALED(*status))
		return report_exit(tid, *status);
	return 0;
}

static int is_stop_signal(int sig)
{
	return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

/* Wait for the PTRACE_EVENT_STOP that a PTRACE_INTERRUPT asked for, passing on signals. */
static int wait_interrupt_stop(pid_t tid, int *group_stop)
{
	int status;

	for (int passed = 0; passed < MAX_SIGNALS_PASSED; passed++) {
		if (pt_wait(tid, &status))
			return -1;
		int sig = WSTOPSIG(status), event = status >> 16;
		if (event == PTRACE_EVENT_STOP) {
			*group_stop = is_stop_signal(sig);
			return 0;
		}
		/* A signal-delivery-stop: the thread had dequeued sig just as we seized it. Deliver it as
		 * it would have been delivered without us, then stop the thread again. */
		if (ptrace(PTRACE_CONT, tid, NULL, (void *)(long)(event ? 0 : sig)) < 0)
			return cryo_fail(errno, "PTRACE_CONT thread %d with signal %d", tid, sig);
		if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) < 0)
			return cryo_fail(errno, "PTRACE_INTERRUPT thread %d", tid);
	}
	return cryo_fail(0, "thread %d keeps receiving signals; cannot stop it", tid);
}

int pt_interrupt(pid_t tid, int *group_stop)
{
	if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) < 0)
		return cryo_fail(errno, "PTRACE_INTERRUPT thread %d", tid);
	return wait_interrupt_stop(tid, group_stop);
}

int pt_park(pid_t tid)
{
	int group_stop;

	/* The interrupt is queued while the thread is stopped and taken before it can return to user
	 * space: it runs no user instruction in between. */
	if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) < 0)
		return cryo_fail(errno, "PTRACE_INTERRUPT thread %d", tid);
	if (ptrace(PTRACE_CONT, tid, NULL, NULL) < 0)
		return cryo_fail(errno, "PTRACE_CONT thread %d", tid);
	return wait_interrupt_stop(tid, &group_stop);
}

int pt_detach(pid_t tid)
{
	if (ptrace(PTRACE_DETACH, tid, NULL, NULL) < 0)
		return cryo_fail(errno, "PTRACE_DETACH thread %d", tid);
	return 0;
}

int pt_getregs(pid_t tid, struct user_regs_struct *regs)
{
	if (ptrace(PTRACE_GETREGS, tid, NULL, regs) < 0)
		return cryo_fail(errno, "PTRACE_GETREGS thread %d", tid);
	return 0;
}

int pt_setregs(pid_t tid, const struct user_regs_struct *regs)
{
	if (ptrace(PTRACE_SETREGS, tid, NULL, regs) < 0)
		return cryo_fail(errno, "PTRACE_SETREGS thread %d", tid);
	return 0;
}

int pt_getsigmask(pid_t tid, uint64_t *mask)
{
	if (ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof *mask, mask) < 0)
		return cryo_fail(errno, "PTRACE_GETSIGMASK thread %d", tid);
	return 0;
}

int pt_setsigmask(pid_t tid, uint64_t mask)
{
	if (ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof mask, &mask) < 0)
		return cryo_fail(errno, "PTRACE_SETSIGMASK thread %d", tid);
	return 0;
}

/* ---- the freeze set ---- */

struct frozen_process *freeze_find(struct freeze *f, pid_t pid)
{
	for (size_t i = 0; i < f->nprocs; i++)
		if (f->procs[i].pid == pid)
			return &f->procs[i];
	return NULL;
}

static int has_thread(const struct frozen_process *p, pid_t tid)
{
	for (size_t i = 0; i < p->nthreads; i++)
		if (p->threads[i].tid == tid)
			return 1;
	return 0;
}

static int add_process(struct freeze *f, pid_t pid, pid_t ppid)
{
	struct frozen_process *v = realloc(f->procs, (f->nprocs + 1) * sizeof *v);

	if (!v)
		return cryo_fail(ENOMEM, "track process %d", pid);
	f->procs = v;
	memset(&v[f->nprocs], 0, sizeof *v);
	v[f->nprocs].pid = pid;
	v[f->nprocs].ppid = ppid;
	f->nprocs++;
	return 0;
}

/* Seccomp filters could refuse the syscalls we inject; suspend them while we hold the process
 * (needs CAP_SYS_ADMIN). Set only once the thread is stopped, so it never runs unfiltered. */
static void suspend_seccomp(pid_t pid, pid_t tid)
{
	struct proc_status st;

	if (proc_status(pid, &st)) {
		cryo_error_clear();
		return;
	}
	proc_status_free(&st);
	if (st.seccomp && ptrace(PTRACE_SETOPTIONS, tid, NULL,
				 (void *)(PTRACE_O_TRACESYSGOOD | PTRACE_O_SUSPEND_SECCOMP)) < 0)
		cryo_warn("cannot suspend seccomp of thread %d (%s); injected syscalls may be refused", tid,
			  cryo_errname(errno));
}

/* Seize one thread. Returns 1 if it vanished before we got it (a thread that just exited), 0 when
 * it is stopped and recorded, -1 on error. */
static int seize_thread(struct frozen_process *p, pid_t tid)
{
	struct frozen_thread t = { .tid = tid };

	if (proc_state(p->pid, tid, &t.state)) {
		if (tid != p->pid) {
			cryo_error_clear();
			return 1;
		}
		return -1;
	}
	if (t.state == 'Z' || t.state == 'X') {
		if (tid != p->pid)
			return 1;
		return cryo_fail(0, "process %d is a zombie (state %c); nothing to dump", p->pid, t.state);
	}
	if (pt_seize(tid, PTRACE_O_TRACESYSGOOD)) {
		if (errno == ESRCH && tid != p->pid) {
			cryo_error_clear();
			return 1;
		}
		return -1;
	}
	if (pt_interrupt(tid, &t.group_stop)) {
		if (tid != p->pid && errno == ESRCH) {
			cryo_error_clear();
			return 1;
		}
		ptrace(PTRACE_DETACH, tid, NULL, NULL);
		return -1;
	}
	struct frozen_thread *v = realloc(p->threads, (p->nthreads + 1) * sizeof *v);
	if (!v) {
		ptrace(PTRACE_DETACH, tid, NULL, NULL);
		return cryo_fail(ENOMEM, "track thread %d", tid);
	}
	p->threads = v;
	/* The leader goes first (FORMAT.md §6.3); others keep /proc order. */
	if (tid == p->pid && p->nthreads) {
		memmove(&v[1], &v[0], p->nthreads * sizeof *v);
		v[0] = t;
	} else {
		v[p->nthreads] = t;
	}
	p->nthreads++;
	if (tid == p->pid)
		p->state = t.state;
	suspend_seccomp(p->pid, tid);
	return 0;
}

static int seize_threads(struct frozen_process *p, int *changed)
{
	char dir[64];
	long *tids;
	size_t n;
	int rc = 0;

	/* The leader first, so that a vanished process is reported as such. */
	if (!has_thread(p, p->pid)) {
		if (seize_thread(p, p->pid))
			return -1;
		*changed = 1;
	}
	snprintf(dir, sizeof dir, "/proc/%d/task", p->pid);
	if (proc_list_numbers(dir, &tids, &n))
		return -1;
	for (size_t i = 0; i < n && !rc; i++) {
		if (has_thread(p, (pid_t)tids[i]))
			continue;
		int r = seize_thread(p, (pid_t)tids[i]);
		if (r < 0)
			rc = -1;
		else if (r == 0)
			*changed = 1;
	}
	free(tids);
	return rc;
}

static int add_children(struct freeze *f, size_t index, int *changed)
{
	for (size_t t = 0; t < f->procs[index].nthreads; t++) {
		pid_t pid = f->procs[index].pid, *kids;
		size_t n;
		if (proc_children(pid, f->procs[index].threads[t].tid, &kids, &n))
			return -1;
		for (size_t k = 0; k < n; k++) {
			if (freeze_find(f, kids[k]))
				continue;
			if (kids[k] == getpid()) {
				free(kids);
				return cryo_fail(0, "process %d is an ancestor of cryo-helper; a tree cannot dump itself",
						 f->procs[0].pid);
			}
			if (add_process(f, kids[k], pid)) {
				free(kids);
				return -1;
			}
			*changed = 1;
		}
		free(kids);
	}
	return 0;
}

/* A descendant that exited, or is exiting, while the tree was being frozen: the tree changed under
 * us, which a new attempt can get past (once unfrozen, its parent reaps it). */
static int vanished(pid_t pid)
{
	char state;

	if (proc_state(pid, 0, &state)) {
		cryo_error_clear();
		return 1;
	}
	return state == 'Z' || state == 'X';
}

int freeze_tree(struct freeze *f, pid_t root, int tree)
{
	struct proc_stat st;
	pid_t failed = 0;

	memset(f, 0, sizeof *f);
	f->tree = tree;
	if (root == getpid())
		return cryo_fail(0, "process %d is cryo-helper itself", root);
	if (proc_stat(root, 0, &st)) {
		if (errno == ENOENT) {
			cryo_error_clear();
			return cryo_fail(ESRCH, "no process %d (open /proc/%d/stat)", root, root);
		}
		return -1;
	}
	if (add_process(f, root, st.ppid))
		return -1;
	for (int pass = 0; pass < MAX_FREEZE_PASSES; pass++) {
		int changed = 0;
		for (size_t i = 0; i < f->nprocs; i++) {
			failed = f->procs[i].pid;
			if (seize_threads(&f->procs[i], &changed))
				goto fail;
			if (tree && add_children(f, i, &changed))
				goto fail;
		}
		if (!changed)
			return 0;
	}
	cryo_fail(0, "process %d keeps creating threads or children; cannot freeze it", root);
	failed = 0;
fail:;
	int transient = failed && failed != root && vanished(failed);
	freeze_release(f);
	return transient ? FREEZE_CHANGED : -1;
}

void freeze_release(struct freeze *f)
{
	for (size_t i = 0; i < f->nprocs; i++) {
		for (size_t t = 0; t < f->procs[i].nthreads; t++)
			if (ptrace(PTRACE_DETACH, f->procs[i].threads[t].tid, NULL, NULL) < 0 && errno != ESRCH)
				cryo_warn("PTRACE_DETACH thread %d: %s", f->procs[i].threads[t].tid,
					  cryo_errname(errno));
		free(f->procs[i].threads);
	}
	free(f->procs);
	memset(f, 0, sizeof *f);
}

/* As tracer we receive each traced thread's death; collect it so nothing lingers. Non-leader threads
 * first: the kernel reports a leader only after the rest of its group is gone. */
static void reap_thread(pid_t tid)
{
	int status;

	for (;;) {
		pid_t r = waitpid(tid, &status, __WALL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || WIFEXITED(status) || WIFSIGNALED(status))
			return;
	}
}

int freeze_kill(struct freeze *f)
{
	int rc = 0;

	for (size_t i = 0; i < f->nprocs; i++)
		if (kill(f->procs[i].pid, SIGKILL) < 0 && errno != ESRCH)
			rc = cryo_fail(errno, "kill process %d", f->procs[i].pid);
	for (size_t i = 0; i < f->nprocs; i++)
		for (size_t t = 1; t < f->procs[i].nthreads; t++)
			reap_thread(f->procs[i].threads[t].tid);
	for (size_t i = f->nprocs; i-- > 0;)
		if (f->procs[i].nthreads)
			reap_thread(f->procs[i].threads[0].tid);
	for (size_t i = 0; i < f->nprocs; i++)
		free(f->procs[i].threads);
	free(f->procs);
	memset(f, 0, sizeof *f);
	return rc;
}
