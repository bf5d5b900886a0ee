/* cryo-helper dump: freeze a process (tree), capture it, write a .cryo image, then let it go.
 *
 * Order of work, chosen so the image streams (FORMAT.md §4: metadata first, then blobs, then pages):
 *   1. freeze every thread (ptrace.c) and note each one's state letter from before the freeze;
 *   2. write IMAGE_META, then per process capture its metadata and write PROCESS + PAGEMAP (the page
 *      map is decided from /proc/PID/pagemap before any page is read);
 *   3. write the blobs (pipe bytes, deleted files), then every process's pages as PAGEDATA;
 *   4. detach (every byte is read by now), then INDEX + footer, fsync, rename into place; with --kill
 *      the processes stay frozen until the image is safely written, then get SIGKILL.
 * Any failure detaches everything (the target keeps running as before) and removes the partial file. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "commands.h"
#include "errmsg.h"
#include "files.h"
#include "format.h"
#include "image_write.h"
#include "memory.h"
#include "msgpack_write.h"
#include "proc.h"
#include "ptrace.h"
#include "remote.h"
#include "thread.h"

#define TOOL_NAME "cryo-helper 0.1.0"
#define NSIG_LINUX 64
#define NRLIMITS 16

struct dump_options {
	pid_t pid;
	int tree;
	int kill;
	const char *output;
};

/* Signals that would kill us mid-dump are turned into a flag: we finish the step at hand, restore
 * the tracees and exit, instead of dying with a tracee's registers pointing at an injected syscall. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

static void guard_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
	int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN); /* a closed output pipe becomes EPIPE from write() */
	/* Tracee stops are collected with a timeout (see pt_wait), which needs SIGCHLD blocked, and sent:
	 * an ignored SIGCHLD (inherited through exec) is never queued. */
	signal(SIGCHLD, SIG_DFL);
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
}

static int check_interrupted(void)
{
	if (interrupted)
		return cryo_fail(0, "interrupted by signal %d", (int)interrupted);
	return 0;
}

/* ---------------------------------------------------------------- process-wide injected state */

struct kernel_sigaction {
	uint64_t handler, flags, restorer, mask;
};

struct process_injected {
	struct kernel_sigaction act[NSIG_LINUX];
	uint64_t brk;
};

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

struct process_capture {
	const struct frozen_process *fp;
	struct thread_state *threads;
	struct process_injected injected;
	struct proc_stat stat;
	struct memory mem;
};

static void capture_free(struct process_capture *pc)
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
static int capture_process(const struct frozen_process *fp, struct process_capture *pc)
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

static int encode_process(struct mpw *w, struct process_capture *pc, struct blobs *blobs)
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

static int write_process(struct image_writer *iw, struct process_capture *pc, struct blobs *blobs)
{
	struct mpw w;
	unsigned char *map = NULL;
	size_t map_len;
	int rc = -1;

	mpw_init(&w);
	if (encode_process(&w, pc, blobs))
		goto out;
	if (w.len > CRYO_MAX_META_SECTION) {
		cryo_fail(0, "metadata of process %d is %zu bytes, over the 64 MiB section limit", pc->fp->pid, w.len);
		goto out;
	}
	if (iw_section(iw, CRYO_SEC_PROCESS, (uint32_t)pc->fp->pid, 0, w.buf, w.len))
		goto out;
	if (memory_pagemap_payload(&pc->mem, &map, &map_len))
		goto out;
	if (map_len > CRYO_MAX_META_SECTION) {
		cryo_fail(0, "page map of process %d is %zu bytes, over the 64 MiB section limit", pc->fp->pid, map_len);
		goto out;
	}
	if (map_len && iw_section(iw, CRYO_SEC_PAGEMAP, (uint32_t)pc->fp->pid, 0, map, map_len))
		goto out;
	rc = 0;
out:
	free(map);
	mpw_free(&w);
	return rc;
}

/* ---------------------------------------------------------------- the image */

static int write_image_meta(struct image_writer *iw, const struct freeze *f, const struct dump_options *o)
{
	struct mpw w;
	struct utsname u;
	struct timeval tv;
	char host[256] = "";
	int rc;

	gettimeofday(&tv, NULL);
	uname(&u);
	gethostname(host, sizeof host - 1);
	mpw_init(&w);
	mpw_map(&w);
	mpw_kstr(&w, "format", "cryo");
	mpw_kstr(&w, "tool", TOOL_NAME);
	mpw_kint(&w, "createdAt", (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000);
	mpw_str(&w, "host");
	mpw_map(&w);
	mpw_ktext(&w, "hostname", host);
	mpw_ktext(&w, "kernel", u.release);
	mpw_ktext(&w, "machine", u.machine);
	mpw_kint(&w, "pageSize", CRYO_PAGE_SIZE);
	mpw_end(&w);
	mpw_kint(&w, "rootPid", o->pid);
	mpw_str(&w, "pids");
	mpw_array(&w);
	for (size_t i = 0; i < f->nprocs; i++)
		mpw_int(&w, f->procs[i].pid);
	mpw_end(&w);
	mpw_str(&w, "options");
	mpw_map(&w);
	mpw_kbool(&w, "tree", o->tree);
	mpw_kbool(&w, "kill", o->kill);
	mpw_end(&w);
	mpw_end(&w);
	rc = mpw_finish(&w);
	if (!rc)
		rc = iw_section(iw, CRYO_SEC_IMAGE_META, 0, 0, w.buf, w.len);
	mpw_free(&w);
	return rc;
}

static int write_image(struct image_writer *iw, struct freeze *f, const struct dump_options *o)
{
	struct process_capture *pcs = calloc(f->nprocs, sizeof *pcs);
	struct blobs blobs;
	int rc = -1;

	blobs_init(&blobs);
	if (!pcs)
		return cryo_fail(ENOMEM, "allocate process captures");
	if (write_image_meta(iw, f, o))
		goto out;
	for (size_t i = 0; i < f->nprocs; i++) {
		if (check_interrupted() || capture_process(&f->procs[i], &pcs[i]) ||
		    write_process(iw, &pcs[i], &blobs))
			goto out;
	}
	if (check_interrupted() || blobs_write(iw, &blobs))
		goto out;
	for (size_t i = 0; i < f->nprocs; i++)
		if (check_interrupted() || memory_write_pages(iw, &pcs[i].mem))
			goto out;
	rc = 0;
out:
	for (size_t i = 0; i < f->nprocs; i++)
		if (pcs[i].fp)
			capture_free(&pcs[i]);
	free(pcs);
	blobs_free(&blobs);
	return rc;
}

/* ---------------------------------------------------------------- freezing */

#define FREEZE_ATTEMPTS 5

/* A child that exits while a tree is being frozen stays a zombie (its parent is frozen) and cannot
 * be dumped; unfrozen, the parent reaps it, so a few more attempts usually get a stable tree. */
static int freeze(struct freeze *f, const struct dump_options *o)
{
	for (int attempt = 1;; attempt++) {
		int rc = freeze_tree(f, o->pid, o->tree);
		if (rc != FREEZE_CHANGED || attempt == FREEZE_ATTEMPTS || interrupted)
			return rc ? -1 : 0;
		cryo_warn("the tree changed while being frozen (%s); trying again", cryo_error());
		cryo_error_clear();
		usleep(10000u << attempt);
	}
}

/* ---------------------------------------------------------------- command line */

static void usage(FILE *out)
{
	fprintf(out, "usage: cryo-helper dump --pid PID [--tree] [--kill] -o FILE|-\n"
		     "  --pid PID   process to dump (all its threads)\n"
		     "  --tree      also dump every descendant process\n"
		     "  --kill      SIGKILL the dumped processes once the image is safely written\n"
		     "  -o FILE     image to write; '-' writes to stdout\n");
}

static int parse_options(int argc, char **argv, struct dump_options *o)
{
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' }, { "tree", no_argument, NULL, 't' },
		{ "kill", no_argument, NULL, 'k' },      { "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },      { NULL, 0, NULL, 0 },
	};
	int c;
	char *end;

	memset(o, 0, sizeof *o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:tko:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			o->pid = (pid_t)strtol(optarg, &end, 10);
			if (*end || o->pid <= 0) {
				fprintf(stderr, "cryo-helper dump: --pid wants a process id, not '%s'\n", optarg);
				return 2;
			}
			break;
		case 't': o->tree = 1; break;
		case 'k': o->kill = 1; break;
		case 'o': o->output = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!o->pid || !o->output || optind != argc) {
		usage(stderr);
		return 2;
	}
	return -1;
}

int cmd_dump(int argc, char **argv)
{
	struct dump_options o;
	struct image_writer iw;
	struct freeze f;
	int status = parse_options(argc, argv, &o);

	if (status >= 0)
		return status;
	guard_signals();
	/* The output first: a bad path must fail before the target is touched. */
	if (iw_open(&iw, o.output))
		goto fail_output;
	if (freeze(&f, &o))
		goto fail_output;
	if (write_image(&iw, &f, &o))
		goto fail_frozen;
	/* Every byte has been read: let the target go before the slow part (fsync), unless it is to be
	 * killed, which waits until the image is safely on disk. */
	if (!o.kill)
		freeze_release(&f);
	if (iw_finish(&iw)) {
		if (o.kill)
			freeze_release(&f);
		goto fail;
	}
	if (o.kill && freeze_kill(&f))
		goto fail;
	return 0;
fail_frozen:
	freeze_release(&f);
fail_output:
	iw_abort(&iw);
fail:
	fprintf(stderr, "cryo-helper dump: %s\n", cryo_error() ? cryo_error() : "failed");
	return 1;
}
