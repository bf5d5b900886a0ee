/* See remote.h for the technique and its reasons. */
#include "remote.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errmsg.h"
#include "proc.h"
#include "ptrace.h"

#define EFLAGS_TF 0x100
#define EFLAGS_DF 0x400
/* Event stops (group-stops, a stray interrupt) we step over while waiting for a syscall-stop. */
#define MAX_STRAY_STOPS 64
/* How much of a large executable mapping we search for a syscall instruction. */
#define SEARCH_LIMIT (4u << 20)

static int mem_file_io(pid_t pid, unsigned long addr, void *buf, size_t len, int write)
{
	char path[64];
	int fd;
	size_t done = 0;

	snprintf(path, sizeof path, "/proc/%d/mem", pid);
	fd = open(path, (write ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return cryo_fail(errno, "open %s", path);
	while (done < len) {
		ssize_t n = write ? pwrite(fd, (char *)buf + done, len - done, (off_t)(addr + done))
				  : pread(fd, (char *)buf + done, len - done, (off_t)(addr + done));
		if (n <= 0) {
			int err = n < 0 ? errno : EIO;
			close(fd);
			return cryo_fail(err, "%s %zu bytes at 0x%lx of process %d", write ? "write" : "read",
					 len - done, addr + done, pid);
		}
		done += n;
	}
	close(fd);
	return 0;
}

int remote_read(pid_t pid, unsigned long addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)addr, len };

	if (process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)len)
		return 0;
	return mem_file_io(pid, addr, buf, len, 0);
}

int remote_write(pid_t pid, unsigned long addr, const void *buf, size_t len)
{
	struct iovec local = { (void *)buf, len }, remote = { (void *)addr, len };

	if (process_vm_writev(pid, &local, 1, &remote, 1, 0) == (ssize_t)len)
		return 0;
	return mem_file_io(pid, addr, (void *)buf, len, 1);
}

/* Search [start, end) of the tracee for the bytes 0f 05. */
static int search_range(pid_t pid, unsigned long start, unsigned long end, unsigned long *ip)
{
	size_t len = end - start > SEARCH_LIMIT ? SEARCH_LIMIT : end - start;
	unsigned char *buf = malloc(len);
	int found = 0;

	if (!buf)
		return 0;
	if (remote_read(pid, start, buf, len) == 0) {
		for (size_t i = 0; i + 1 < len; i++) {
			if (buf[i] == 0x0f && buf[i + 1] == 0x05) {
				*ip = start + i;
				found = 1;
				break;
			}
		}
	} else {
		cryo_error_clear();
	}
	free(buf);
	return found;
}

/* One pass over the maps text: pass 0 looks only at [vdso], pass 1 at every other executable
 * mapping ([vsyscall] excepted: it is emulated, not real code). */
static int search_maps(pid_t pid, char *maps, int pass, unsigned long *ip)
{
	char *save = NULL;

	for (char *line = strtok_r(maps, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long start, end;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) != 3 || perms[2] != 'x')
			continue;
		int is_vdso = strstr(line, "[vdso]") != NULL;
		if (pass == 0 ? !is_vdso : (is_vdso || strstr(line, "[vsyscall]")))
			continue;
		if (search_range(pid, start, end, ip))
			return 1;
	}
	return 0;
}

int remote_find_syscall(pid_t pid, unsigned long *ip)
{
	char *maps;
	size_t len;
	int found = 0;

	/* The vDSO first: it is small and always has the syscall fallbacks of clock_gettime & co. */
	for (int pass = 0; pass < 2 && !found; pass++) {
		if (proc_readf(&maps, &len, "/proc/%d/maps", pid))
			return -1;
		found = search_maps(pid, maps, pass, ip);
		free(maps);
	}
	if (!found)
		return cryo_fail(0, "find a syscall instruction in the executable mappings of process %d", pid);
	return 0;
}

int remote_begin(struct remote *r, pid_t tid, unsigned long syscall_ip)
{
	unsigned char insn[2];

	memset(r, 0, sizeof *r);
	r->tid = tid;
	r->syscall_ip = syscall_ip;
	if (remote_read(tid, syscall_ip, insn, 2))
		return -1;
	if (insn[0] != 0x0f || insn[1] != 0x05)
		return cryo_fail(0, "no syscall instruction at 0x%lx in thread %d", syscall_ip, tid);
	if (pt_getregs(tid, &r->saved) || pt_getsigmask(tid, &r->saved_mask))
		return -1;
	r->active = 1;
	/* Block everything (SIGKILL excepted, as ever) so that no pending signal is dequeued while our
	 * syscalls run; remote_end() restores the mask. */
	if (pt_setsigmask(tid, ~0ull)) {
		r->active = 0;
		return -1;
	}
	return 0;
}

const char *remote_describe_status(int st, char *buf, size_t len)
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

static int __attribute__((format(printf, 4, 5))) fault(struct remote_fault *f, int err, int status,
						       const char *fmt, ...)
{
	va_list ap;

	f->err = err;
	f->status = status;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof f->msg, fmt, ap);
	va_end(ap);
	return -1;
}

/* Resume with PTRACE_SYSCALL and wait for the next syscall-stop, stepping over event stops (and, with
 * REMOTE_SUPPRESS_SIGNALS, signal-delivery-stops: the signal is never passed on). */
static int next_syscall_stop(pid_t tid, long nr, unsigned flags, struct remote_fault *f)
{
	char fate[96];
	int st;

	for (int stray = 0; (flags & REMOTE_UNBOUNDED) || stray < MAX_STRAY_STOPS; stray++) {
		if (ptrace(PTRACE_SYSCALL, tid, NULL, NULL) < 0)
			return fault(f, errno, 0, "PTRACE_SYSCALL of thread %d (injected syscall %ld)", tid, nr);
		if (pt_wait_status(tid, &st, !(flags & REMOTE_UNBOUNDED))) {
			if (errno == ETIMEDOUT)
				return fault(f, 0, 0, "thread %d did not stop within %d s while running injected "
					     "syscall %ld (state D?)", tid, PT_WAIT_TIMEOUT_MS / 1000, nr);
			return fault(f, errno, 0, "waiting for thread %d (injected syscall %ld)", tid, nr);
		}
		if (!WIFSTOPPED(st))
			return fault(f, 0, st, "thread %d vanished while running injected syscall %ld: %s", tid, nr,
				     remote_describe_status(st, fate, sizeof fate));
		int sig = WSTOPSIG(st), event = st >> 16;
		if (sig == (SIGTRAP | 0x80))
			return 0;
		if (event == PTRACE_EVENT_STOP || event == PTRACE_EVENT_CLONE || (flags & REMOTE_SUPPRESS_SIGNALS))
			continue;
		/* A signal-delivery-stop although everything is blocked: a fault caused by our rip. The
		 * signal is suppressed (never resumed with); the caller puts the registers back. */
		return fault(f, 0, st, "thread %d got signal %d instead of running injected syscall %ld", tid, sig,
			     nr);
	}
	return fault(f, 0, 0, "thread %d never reached its syscall (injected syscall %ld)", tid, nr);
}

int remote_run(pid_t tid, unsigned long syscall_ip, const struct user_regs_struct *base, unsigned flags,
	       long nr, const long args[6], long *ret, struct remote_fault *f)
{
	struct user_regs_struct regs = *base;

	f->err = f->status = f->started = 0;
	f->msg[0] = 0;
	regs.rax = nr;
	regs.orig_rax = -1;             /* no syscall restart on the way out of this stop */
	regs.rdi = args[0];
	regs.rsi = args[1];
	regs.rdx = args[2];
	regs.r10 = args[3];
	regs.r8 = args[4];
	regs.r9 = args[5];
	regs.rip = syscall_ip;
	regs.eflags &= ~(EFLAGS_TF | EFLAGS_DF);
	if (ptrace(PTRACE_SETREGS, tid, NULL, &regs) < 0)
		return fault(f, errno, 0, "PTRACE_SETREGS of thread %d (injected syscall %ld)", tid, nr);
	f->started = 1;
	if (next_syscall_stop(tid, nr, flags, f) || next_syscall_stop(tid, nr, flags, f)) /* entry, exit */
		return -1;
	if (ptrace(PTRACE_GETREGS, tid, NULL, &regs) < 0)
		return fault(f, errno, 0, "PTRACE_GETREGS of thread %d after injected syscall %ld", tid, nr);
	if (regs.rip != syscall_ip + 2)
		return fault(f, 0, 0, "thread %d: injected syscall %ld ended at rip %#llx, not after the syscall "
			     "instruction at %#lx", tid, nr, regs.rip, syscall_ip);
	*ret = (long)regs.rax;
	return 0;
}

int remote_syscall(struct remote *r, long *ret, long nr, long a0, long a1, long a2, long a3, long a4,
		   long a5)
{
	const long args[6] = { a0, a1, a2, a3, a4, a5 };
	struct remote_fault f;
	int rc;

	if (!r->active)
		return cryo_fail(0, "remote syscall %ld on thread %d outside remote_begin/end", nr, r->tid);
	rc = remote_run(r->tid, r->syscall_ip, &r->saved, 0, nr, args, ret, &f);
	if (f.started)
		r->ran = 1;
	return rc ? cryo_fail(f.err, "%s", f.msg) : 0;
}

unsigned long remote_scratch(struct remote *r)
{
	if (r->scratch)
		return r->scratch;
	unsigned long addr = (r->saved.rsp - REMOTE_RED_ZONE - REMOTE_SCRATCH_SIZE) & ~63ul;
	if (remote_read(r->tid, addr, r->scratch_saved, REMOTE_SCRATCH_SIZE)) {
		cryo_fail(0, "borrow %d bytes of stack below rsp 0x%llx of thread %d", REMOTE_SCRATCH_SIZE,
			  r->saved.rsp, r->tid);
		return 0;
	}
	r->scratch = addr;
	return addr;
}

/* After syscalls ran, the thread sits at a syscall-stop (normally the exit one; the entry one if an
 * injection failed half-way). It is first moved, with orig_rax = -1 so that a pending entry cannot
 * run any syscall, to an interrupt stop; only there are its own registers put back, so that the
 * kernel's restart logic sees exactly them when the thread is finally resumed. */
static int park(struct remote *r)
{
	struct user_regs_struct neutral = r->saved;

	neutral.orig_rax = -1;
	if (pt_setregs(r->tid, &neutral) || pt_park(r->tid))
		return -1;
	return 0;
}

int remote_end(struct remote *r)
{
	int rc = 0;

	if (!r->active)
		return 0;
	r->active = 0;
	if (r->scratch && remote_write(r->tid, r->scratch, r->scratch_saved, REMOTE_SCRATCH_SIZE))
		rc = -1;
	if (r->ran && park(r))
		rc = -1;
	if (pt_setregs(r->tid, &r->saved))
		rc = -1;
	if (pt_setsigmask(r->tid, r->saved_mask))
		rc = -1;
	r->scratch = 0;
	r->ran = 0;
	return rc;
}
