/* One frozen process's metadata (FORMAT.md §6.2): what /proc and prlimit tell, what only the
 * process can tell (every sigaction and the current brk, through injected syscalls in its leader),
 * its threads (thread.c), memory layout (memory.c) and descriptors (files.c). */
#ifndef CRYO_PROCESS_H
#define CRYO_PROCESS_H

#include <stdint.h>

#include "files.h"
#include "memory.h"
#include "msgpack_write.h"
#include "proc.h"
#include "ptrace.h"
#include "thread.h"

#define NSIG_LINUX 64

/* The kernel's struct sigaction on x86_64, as rt_sigaction() reads it. */
struct kernel_sigaction {
	uint64_t handler, flags, restorer, mask;
};

struct process_injected {
	struct kernel_sigaction act[NSIG_LINUX];
	uint64_t brk;
};

struct process_state {
	const struct frozen_process *fp;
	struct thread_state *threads;
	struct process_injected injected;
	struct proc_stat stat;
	struct memory mem;
};

/* Registers first (nothing has touched the threads yet), then the injected syscalls, then memory. */
int process_capture(const struct frozen_process *fp, struct process_state *pc);
/* The PROCESS map; registers the process's blobs. */
int process_encode(struct mpw *w, struct process_state *pc, struct blobs *blobs);
void process_free(struct process_state *pc);

#endif
