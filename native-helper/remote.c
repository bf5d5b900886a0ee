/* See remote.h for the technique and its reasons. */
#include "remote.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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

/* Resume with PTRACE_SYSCALL and wait for the next syscall-stop, stepping over event stops. */
static int next_syscall_stop(struct remote *r, const char *what)
{
	int status;

	for (int stray = 0; stray < MAX_STRAY_STOPS; stray++) {
		if (ptrace(PTRACE_SYSCALL, r->tid, NULL, NULL) < 0)
			return cryo_fail(errno, "PTRACE_SYSCALL thread %d (%s)", r->tid, what);
		if (pt_wait(r->tid, &status))
			return -1;
		int sig = WSTOPSIG(status), event = status >> 16;
		if (sig == (SIGTRAP | 0x80))
			return 0;
		if (event == PTRACE_EVENT_STOP)
			continue;
		/* A signal-delivery-stop although everything is blocked: a fault caused by our rip. The
		 * signal is suppressed (never resumed with), the registers are restored by remote_end. */
		return cryo_fail(0, "thread %d got signal %d instead of running %s", r->tid, sig, what);
	}
	return cryo_fail(0, "thread %d never reached its syscall (%s)", r->tid, what);
}

int remote_syscall(struct remote *r, long *ret, long nr, long a0, long a1, long a2, long a3, long a4,
		   long a5)
{
	struct user_regs_struct regs = r->saved;
	char what[32];

	if (!r->active)
		return cryo_fail(0, "remote syscall %ld on thread %d outside remote_begin/end", nr, r->tid);
	snprintf(what, sizeof what, "injected syscall %ld", nr);
	regs.rax = nr;
	regs.orig_rax = -1;
	regs.rdi = a0;
	regs.rsi = a1;
	regs.rdx = a2;
	regs.r10 = a3;
	regs.r8 = a4;
	regs.r9 = a5;
	regs.rip = r->syscall_ip;
	regs.eflags &= ~EFLAGS_TF;
	if (pt_setregs(r->tid, &regs))
		return -1;
	r->ran = 1;
	if (next_syscall_stop(r, what) || next_syscall_stop(r, what))
		return -1;
	if (pt_getregs(r->tid, &regs))
		return -1;
	if (regs.rip != r->syscall_ip + 2)
		return cryo_fail(0, "thread %d: %s ended at 0x%llx, not after the syscall instruction", r->tid,
				 what, regs.rip);
	*ret = (long)regs.rax;
	return 0;
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
