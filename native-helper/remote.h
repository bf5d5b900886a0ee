/* Running syscalls inside a stopped tracee ("remote" or "injected" syscalls). This module is the only
 * code that makes a tracee execute anything; dump and restore both use it.
 *
 * How (remote_run, the one primitive): rip is pointed at an existing `syscall` instruction (0f 05) in
 * the tracee, rax/args are loaded, orig_rax is set to -1 (so the kernel does not mistake the stop for
 * an interrupted syscall and rewind rip), and the thread is resumed with PTRACE_SYSCALL: it stops at
 * syscall entry, then at syscall exit, where rax is the result. No code is written into the tracee
 * and no instruction after the syscall ever runs, so no SIGTRAP is raised (a forced SIGTRAP would
 * reset a blocked or ignored SIGTRAP disposition to SIG_DFL). The dump calls it on an instruction
 * found in the tracee's own code (remote_begin/remote_syscall/remote_end below), the restorer on the
 * trampoline page its processes inherit (restore_remote.c).
 *
 * The dump's session: the thread's registers and signal mask are saved first.
 * All signals are blocked while syscalls run so that a pending signal cannot be dequeued in between.
 * remote_end() parks the thread in an interrupt stop (see pt_park) and puts everything back there
 * (scratch bytes, registers, mask), on every path, including after a failed syscall.
 *
 * Scratch memory for pointer arguments is borrowed from the thread's own stack, REMOTE_SCRATCH_SIZE
 * bytes ending below rsp - 128: the x86_64 ABI lets code keep live data in the 128-byte red zone
 * below rsp, but anything deeper is dead (a signal frame may overwrite it at any moment), and the
 * stack is mapped and writable. The bytes are saved first and written back by remote_end(). */
#ifndef CRYO_REMOTE_H
#define CRYO_REMOTE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#define REMOTE_SCRATCH_SIZE 512
#define REMOTE_RED_ZONE 128

/* remote_run flags: how stops other than the two syscall-stops are handled. By default an event stop
 * (a group-stop, a stray interrupt, a clone event) is stepped over, at most 64 times, a wait gives up
 * after PT_WAIT_TIMEOUT_MS (when SIGCHLD is blocked, see pt_wait), and a signal-delivery-stop (a fault
 * at rip: everything is blocked) fails the call with the signal suppressed. */
#define REMOTE_SUPPRESS_SIGNALS 0x1 /* resume over a signal-delivery-stop without its signal instead */
#define REMOTE_UNBOUNDED 0x2        /* no limit on stepped-over stops, waits without a timeout */

/* Why remote_run failed: what was being attempted and what became of the thread, for the caller's own
 * error reporting (errmsg.c for the dump, rst_fail for the restorer). */
struct remote_fault {
	int err;                /* errno of the failed call, 0 if none failed */
	int status;             /* the wait status that ended the call (an exit, a death, a signal), or 0 */
	int started;            /* the registers were set: the thread may sit at a syscall-stop */
	char msg[192];          /* "PTRACE_SYSCALL of thread 12 (injected syscall 9)", without the errno */
};

/* The primitive: thread tid, in a ptrace-stop, runs syscall nr(args) at the `syscall` instruction at
 * syscall_ip with the registers base (its own, or a prepared set) otherwise, and is left at the
 * syscall-exit-stop; nothing is saved or restored. 0 with *ret the raw result (-4095..-1 = -errno),
 * or -1 with *f filled in. */
int remote_run(pid_t tid, unsigned long syscall_ip, const struct user_regs_struct *base, unsigned flags,
	       long nr, const long args[6], long *ret, struct remote_fault *f);
/* "it exited with status 1", "it was killed by signal 9 (Killed)", ... for a wait status. */
const char *remote_describe_status(int status, char *buf, size_t len);

struct remote {
	pid_t tid;
	unsigned long syscall_ip;           /* address of a `syscall` instruction in the tracee */
	struct user_regs_struct saved;      /* registers at remote_begin() */
	uint64_t saved_mask;                /* blocked signals at remote_begin() */
	unsigned long scratch;              /* tracee address of the borrowed bytes, 0 until borrowed */
	unsigned char scratch_saved[REMOTE_SCRATCH_SIZE];
	int ran;                            /* a syscall ran: the thread sits at a syscall-exit-stop */
	int active;
};

/* Finds a `syscall` instruction in pid's executable mappings ([vdso] first, then the others). */
int remote_find_syscall(pid_t pid, unsigned long *ip);

/* Start injecting into tid, which must be in a ptrace-stop. */
int remote_begin(struct remote *r, pid_t tid, unsigned long syscall_ip);
/* Run syscall nr(a0..a5) in the tracee. *ret is the raw result (-4095..-1 = -errno). Returns -1 only
 * when the injection itself failed (then the tracee's state is still restored by remote_end). */
int remote_syscall(struct remote *r, long *ret, long nr, long a0, long a1, long a2, long a3, long a4,
		   long a5);
/* Address of REMOTE_SCRATCH_SIZE bytes of tracee memory usable as syscall arguments (0 on error). */
unsigned long remote_scratch(struct remote *r);
/* Undo everything remote_begin and the syscalls changed. Returns -1 if some restore step failed. */
int remote_end(struct remote *r);

/* Tracee memory access: process_vm_readv/writev, falling back to /proc/PID/mem (which can read and
 * write pages the tracee itself may not, through FOLL_FORCE). All or nothing. */
int remote_read(pid_t pid, unsigned long addr, void *buf, size_t len);
int remote_write(pid_t pid, unsigned long addr, const void *buf, size_t len);

#endif
