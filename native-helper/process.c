/* See process.h. */
#include "process.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "errmsg.h"
#include "remote.h"

#define NRLIMITS 16

/* ---------------------------------------------------------------- process-wide injected state */

/* The kernel's own view of every handler, flags, restorer and mask: raw rt_sigaction in the tracee
 * (libc's sigaction() wrapper would not tell us sa_restorer as the kernel holds it). */
static int inject_sigactions(struct remote *r, struct process_injected *pi)
{
	unsigned long scratch = remote_scratch(r);
	long ret;

	if (!scratch)
		return -1;
	for (int sig = 1; sig <= NSIG_LINUX; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (remote_syscall(r, &ret, SYS_rt_sigaction, sig, 0, (long)scratch, 8, 0, 0))
			return -1;
		if (ret < 0)
			return cryo_fail((int)-ret, "injected rt_sigaction(%d) in thread %d", sig, r->tid);
		if (remote_read(r->tid, scratch, &pi->act[sig - 1], sizeof pi->act[0]))
			return -1;
	}
	return 0;
}

static int inject_brk(struct remote *r, struct process_injected *pi)
{
	long ret;

	/* brk(0) fails by design and returns the current break. */
	if (remote_syscall(r, &ret, SYS_brk, 0, 0, 0, 0, 0, 0))
		return -1;
	pi->brk = (uint64_t)ret;
	return 0;
}

/* All injected syscalls of one thread run in one remote session; the leader also answers for the
 * process. remote_end() runs on every path. */
static int inject_thread(unsigned long syscall_ip, struct thread_state *ts, struct process_injected *pi)
{
	struct remote r;
	int rc;

	if (remote_begin(&r, ts->tid, syscall_ip))
		return -1;
	rc = thread_inject(&r, ts);
	if (!rc && pi)
		rc = inject_sigactions(&r, pi);
	if (!rc && pi)
		rc = inject_brk(&r, pi);
	if (remote_end(&r))
		rc = -1;
	return rc;
}

/* ---------------------------------------------------------------- encoding helpers */

/* NUL-separated strings (cmdline, environ) as an array; the trailing NUL ends the last one. */
static void encode_nul_list(struct mpw *w, const char *buf, size_t len)
{
	mpw_array(w);
	for (size_t i = 0; i < len;) {
		size_t n = strnlen(buf + i, len - i);
		mpw_text(w, buf + i, n);
		i += n + 1;
	}
	mpw_end(w);
}

static int encode_proc_file_list(struct mpw *w, pid_t pid, const char *key, const char *file)
{
	char *buf;
	size_t len;

	if (proc_readf(&buf, &len, "/proc/%d/%s", pid, file))
		return -1;
	mpw_str(w, key);
	encode_nul_list(w, buf, len);
	free(buf);
	return 0;
}

/* exe, cwd, root: the link target, or nil when there is none (kernel threads, exited mm). */
static void encode_link(struct mpw *w, pid_t pid, const char *key, const char *name)
{
	char path[64], *target;

	snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
	mpw_str(w, key);
	if (proc_readlink(path, &target)) {
		cryo_error_clear();
		mpw_nil(w);
		return;
	}
	mpw_ctext(w, target);
	free(target);
}

static void encode_ids(struct mpw *w, const char *key, const unsigned v[4])
{
	mpw_str(w, key);
	mpw_array(w);
	for (int i = 0; i < 4; i++)
		mpw_uint(w, v[i]);
	mpw_end(w);
}

static int encode_creds(struct mpw *w, pid_t pid, int *umask_out)
{
	struct proc_status st;

	if (proc_status(pid, &st))
		return -1;
	mpw_str(w, "creds");
	mpw_map(w);
	encode_ids(w, "uid", st.uid);
	encode_ids(w, "gid", st.gid);
	mpw_str(w, "groups");
	mpw_array(w);
	for (size_t i = 0; i < st.ngroups; i++)
		mpw_uint(w, st.groups[i]);
	mpw_end(w);
	mpw_str(w, "capInh"), mpw_u64bin(w, st.cap_inh);
	mpw_str(w, "capPrm"), mpw_u64bin(w, st.cap_prm);
	mpw_str(w, "capEff"), mpw_u64bin(w, st.cap_eff);
	mpw_str(w, "capBnd"), mpw_u64bin(w, st.cap_bnd);
	mpw_str(w, "capAmb"), mpw_u64bin(w, st.cap_amb);
	mpw_kbool(w, "noNewPrivs", st.no_new_privs);
	mpw_kint(w, "seccomp", st.seccomp);
	mpw_end(w);
	*umask_out = st.umask;
	proc_status_free(&st);
	return 0;
}

static void encode_limit(struct mpw *w, rlim_t v)
{
	if (v == RLIM_INFINITY)
		mpw_nil(w);
	else
		mpw_uint(w, v);
}

static int encode_rlimits(struct mpw *w, pid_t pid)
{
	mpw_str(w, "rlimits");
	mpw_array(w);
	for (int i = 0; i < NRLIMITS; i++) {
		struct rlimit rl;
		if (prlimit(pid, i, NULL, &rl) < 0)
			return cryo_fail(errno, "prlimit(%d, %d)", pid, i);
		mpw_array(w);
		encode_limit(w, rl.rlim_cur);
		encode_limit(w, rl.rlim_max);
		mpw_end(w);
	}
	mpw_end(w);
	return 0;
}

static int encode_personality(struct mpw *w, pid_t pid)
{
	char *text;

	if (proc_readf(&text, NULL, "/proc/%d/personality", pid))
		return -1;
	mpw_kuint(w, "personality", strtoul(text, NULL, 16));
	free(text);
	return 0;
}

static void encode_mm(struct mpw *w, const struct proc_stat *st, uint64_t brk)
{
	mpw_str(w, "mm");
	mpw_map(w);
	mpw_kuint(w, "startCode", st->start_code);
	mpw_kuint(w, "endCode", st->end_code);
	mpw_kuint(w, "startData", st->start_data);
	mpw_kuint(w, "endData", st->end_data);
	mpw_kuint(w, "startBrk", st->start_brk);
	mpw_kuint(w, "brk", brk);
	mpw_kuint(w, "startStack", st->start_stack);
	mpw_kuint(w, "argStart", st->arg_start);
	mpw_kuint(w, "argEnd", st->arg_end);
	mpw_kuint(w, "envStart", st->env_start);
	mpw_kuint(w, "envEnd", st->env_end);
	mpw_end(w);
}

static int encode_auxv(struct mpw *w, pid_t pid)
{
	char *buf;
	size_t len;

	if (proc_readf(&buf, &len, "/proc/%d/auxv", pid))
		return -1;
	mpw_str(w, "auxv");
	mpw_bin(w, buf, len);
	free(buf);
	return 0;
}

static void encode_sigactions(struct mpw *w, const struct process_injected *pi)
{
	mpw_str(w, "sigactions");
	mpw_array(w);
	for (int sig = 1; sig <= NSIG_LINUX; sig++) {
		const struct kernel_sigaction *a = &pi->act[sig - 1];
		if (sig == SIGKILL || sig == SIGSTOP) {
			mpw_nil(w);
			continue;
		}
		mpw_map(w);
		mpw_kuint(w, "handler", a->handler);
		mpw_kuint(w, "flags", a->flags);
		mpw_kuint(w, "restorer", a->restorer);
		mpw_str(w, "mask");
		mpw_u64bin(w, a->mask);
		mpw_end(w);
	}
	mpw_end(w);
}

static int encode_pending_shared(struct mpw *w, pid_t pid)
{
	unsigned char *info;
	size_t n;

	if (peek_siginfo(pid, 1, &info, &n))
		return -1;
	mpw_str(w, "pendingShared");
	mpw_array(w);
	for (size_t i = 0; i < n; i++)
		mpw_bin(w, info + i * SIGINFO_SIZE, SIGINFO_SIZE);
	mpw_end(w);
	free(info);
	return 0;
}

/* ---------------------------------------------------------------- one process */

void process_free(struct process_state *pc)
{
	if (pc->threads)
		for (size_t i = 0; i < pc->fp->nthreads; i++)
			thread_free(&pc->threads[i]);
	free(pc->threads);
	pc->threads = NULL;
	memory_free(&pc->mem);
}

/* Registers first (nothing has touched the threads yet), then the injected syscalls, then memory:
 * the pages are classified after the injections, which borrowed (and gave back) stack bytes. */
int process_capture(const struct frozen_process *fp, struct process_state *pc)
{
	pid_t pid = fp->pid;
	unsigned long syscall_ip;

	memset(pc, 0, sizeof *pc);
	pc->fp = fp;
	pc->threads = calloc(fp->nthreads, sizeof *pc->threads);
	if (!pc->threads)
		return cryo_fail(ENOMEM, "allocate thread state of process %d", pid);
	if (proc_stat(pid, 0, &pc->stat))
		return -1;
	for (size_t i = 0; i < fp->nthreads; i++)
		if (thread_capture(pid, &fp->threads[i], &pc->threads[i]))
			return -1;
	if (remote_find_syscall(pid, &syscall_ip))
		return -1;
	for (size_t i = 0; i < fp->nthreads; i++)
		if (inject_thread(syscall_ip, &pc->threads[i], i == 0 ? &pc->injected : NULL))
			return -1;
	return memory_scan(pid, &pc->mem);
}

int process_encode(struct mpw *w, struct process_state *pc, struct blobs *blobs)
{
	const struct frozen_process *fp = pc->fp;
	pid_t pid = fp->pid;
	char state[2] = { fp->state, 0 }, *comm;
	size_t len;
	int umask = -1;

	if (proc_readf(&comm, &len, "/proc/%d/comm", pid))
		return -1;
	if (len && comm[len - 1] == '\n')
		comm[len - 1] = 0;
	mpw_map(w);
	mpw_kint(w, "pid", pid);
	mpw_kint(w, "ppid", pc->stat.ppid);
	mpw_kint(w, "pgid", pc->stat.pgrp);
	mpw_kint(w, "sid", pc->stat.session);
	mpw_ktext(w, "comm", comm);
	free(comm);
	mpw_kstr(w, "state", state);
	if (encode_proc_file_list(w, pid, "cmdline", "cmdline") ||
	    encode_proc_file_list(w, pid, "environ", "environ"))
		return -1;
	encode_link(w, pid, "exe", "exe");
	encode_link(w, pid, "cwd", "cwd");
	encode_link(w, pid, "root", "root");
	if (encode_creds(w, pid, &umask))
		return -1;
	mpw_str(w, "umask");
	if (umask >= 0)
		mpw_int(w, umask);
	else
		mpw_nil(w);
	if (encode_personality(w, pid) || encode_rlimits(w, pid))
		return -1;
	encode_mm(w, &pc->stat, pc->injected.brk);
	if (encode_auxv(w, pid))
		return -1;
	encode_sigactions(w, &pc->injected);
	if (encode_pending_shared(w, pid))
		return -1;
	mpw_str(w, "threads");
	mpw_array(w);
	for (size_t i = 0; i < fp->nthreads; i++)
		thread_encode(w, &pc->threads[i]);
	mpw_end(w);
	mpw_str(w, "vmas");
	memory_encode_vmas(w, &pc->mem);
	mpw_str(w, "fds");
	if (files_encode(w, pid, blobs))
		return -1;
	mpw_end(w);
	return mpw_finish(w);
}
