/* Per-thread state of a frozen thread (FORMAT.md §6.3): what ptrace gives directly (registers with the
 * syscall-restart fix-up, xstate, signal mask, pending signals, rseq), what the helper can ask the
 * kernel for (robust list), and what only the thread itself can ask for, obtained with injected
 * syscalls (the set_tid_address pointer, sigaltstack). */
#ifndef CRYO_THREAD_H
#define CRYO_THREAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "msgpack_write.h"
#include "ptrace.h"
#include "remote.h"

#define SIGINFO_SIZE 128

struct thread_state {
	pid_t tid;
	char state;
	char *comm;
	struct user_regs_struct regs;    /* after the restart fix-up */
	const char *restart;             /* "none", "restart", "eintr" */
	unsigned char *xstate;
	size_t xstate_len;
	uint64_t xfeatures;
	uint64_t sigmask;
	unsigned char *pending;          /* npending siginfo_t of SIGINFO_SIZE bytes */
	size_t npending;
	uint64_t clear_child_tid;
	int have_clear_child_tid;
	uint64_t robust_head, robust_len;
	int have_rseq;
	uint64_t rseq_ptr;
	uint32_t rseq_size, rseq_sig;
	uint64_t ss_sp, ss_size;
	int ss_flags;
};

/* Everything ptrace and /proc give about a stopped thread. */
int thread_capture(pid_t pid, const struct frozen_thread *ft, struct thread_state *ts);
/* The per-thread values only the thread can ask for; r is a remote session on that thread. */
int thread_inject(struct remote *r, struct thread_state *ts);
void thread_encode(struct mpw *w, const struct thread_state *ts);
void thread_free(struct thread_state *ts);

/* Signals queued for pid/tid: per-thread (shared = 0) or process-wide (shared = 1). */
int peek_siginfo(pid_t tid, int shared, unsigned char **out, size_t *count);

#endif
