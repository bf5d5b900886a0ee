/* ptrace primitives and the "freeze set": every thread of a process (or of a whole process tree) held
 * in a ptrace-stop with PTRACE_SEIZE + PTRACE_INTERRUPT, so the tree cannot change while it is read.
 * PTRACE_SEIZE (not ATTACH) is used because it sends no SIGSTOP: the target's signal state is left
 * alone, and a target that was already stopped (state T) is still stopped after we detach. */
#ifndef CRYO_PTRACE_H
#define CRYO_PTRACE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

/* ---- primitives (reusable by dump and restore; they record an error message on failure) ---- */

/* PTRACE_SEIZE with options, falling back to no PTRACE_O_SUSPEND_SECCOMP if that is refused. */
int pt_seize(pid_t tid, unsigned long options);
/* Stop a seized, running thread: PTRACE_INTERRUPT, then wait for its PTRACE_EVENT_STOP. A signal that
 * the thread was delivering at that moment is passed on to it (PTRACE_CONT with the signal, as it
 * would have been without us) and the thread interrupted again. *group_stop gets 1 when the stop is a
 * group-stop (the process is stopped by SIGSTOP & co). */
int pt_interrupt(pid_t tid, int *group_stop);
/* waitpid(tid, __WALL) for the next stop; an exit or death is an error naming the thread. */
int pt_wait(pid_t tid, int *status);
/* A thread that never stops (stuck in uninterruptible sleep, or a vfork parent waiting on its child)
 * must not hang the dump: a bounded wait gives up on it after this long. */
#define PT_WAIT_TIMEOUT_MS 10000
/* pt_wait without a message: 0 with *status (a stop, an exit or a death), or -1 with errno (waitpid's,
 * or ETIMEDOUT). With bounded, the wait times out as pt_wait's does (only when SIGCHLD is blocked);
 * without, it blocks until the thread changes state. */
int pt_wait_status(pid_t tid, int *status, int bounded);
int pt_detach(pid_t tid);
int pt_getregs(pid_t tid, struct user_regs_struct *regs);
int pt_setregs(pid_t tid, const struct user_regs_struct *regs);
int pt_getsigmask(pid_t tid, uint64_t *mask);
int pt_setsigmask(pid_t tid, uint64_t mask);

/* ---- the freeze set ---- */

struct frozen_thread {
	pid_t tid;
	char state;        /* /proc state letter read just before it was seized */
	int group_stop;    /* its ptrace-stop was a group-stop */
};

struct frozen_process {
	pid_t pid, ppid;
	char state;        /* of the thread-group leader, before the freeze */
	struct frozen_thread *threads;  /* the leader first */
	size_t nthreads;
};

struct freeze {
	struct frozen_process *procs;   /* parents before children; procs[0] is the root */
	size_t nprocs;
	int tree;
};

/* freeze_tree's result when a descendant exited while the tree was being frozen (worth a retry). */
#define FREEZE_CHANGED (-2)

/* Seize and stop pid's threads, and with tree its descendants too, rescanning /proc until a full pass
 * finds no new thread and no new child. On failure everything seized so far is detached and -1 or
 * FREEZE_CHANGED is returned (with a message recorded). */
int freeze_tree(struct freeze *f, pid_t root, int tree);
/* Detach every thread (each left exactly as it was: running, or stopped if it was group-stopped). */
void freeze_release(struct freeze *f);
/* SIGKILL every frozen process, reap the thread notifications we get as tracer, free the set. */
int freeze_kill(struct freeze *f);
/* The frozen_process of pid, or NULL. */
struct frozen_process *freeze_find(struct freeze *f, pid_t pid);

#endif

/* Return a thread stopped at a syscall-stop (as remote.c leaves it) to an interrupt stop, which the
 * kernel takes inside its signal-delivery path. Only from there does resuming the thread run the
 * syscall-restart logic (rax = -ERESTART... -> re-execute) on its registers; resuming it straight
 * from a syscall-exit-stop would hand -ERESTARTSYS & co to user space. */
int pt_park(pid_t tid);
