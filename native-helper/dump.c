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
#include "process.h"
#include "ptrace.h"

#define TOOL_NAME "cryo-helper 0.1.0"

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

static int write_process(struct image_writer *iw, struct process_state *pc, struct blobs *blobs)
{
	struct mpw w;
	unsigned char *map = NULL;
	size_t map_len;
	int rc = -1;

	mpw_init(&w);
	if (process_encode(&w, pc, blobs))
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
	struct process_state *pcs = calloc(f->nprocs, sizeof *pcs);
	struct blobs blobs;
	int rc = -1;

	blobs_init(&blobs);
	if (!pcs)
		return cryo_fail(ENOMEM, "allocate process captures");
	if (write_image_meta(iw, f, o))
		goto out;
	for (size_t i = 0; i < f->nprocs; i++) {
		if (check_interrupted() || process_capture(&f->procs[i], &pcs[i]) ||
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
			process_free(&pcs[i]);
	free(pcs);
	blobs_free(&blobs);
	return rc;
}

/* ---------------------------------------------------------------- freezing */

#define FREEZE_ATTEMPTS 20

/* A child that exits while a tree is being frozen stays a zombie (its parent is frozen) and cannot
 * be dumped (the format has no zombies); unfrozen, the parent reaps it, so another attempt usually
 * gets a stable tree. A parent that forks short-lived children all the time is often caught with
 * one exiting, hence many quick attempts rather than a few slow ones. */
static int freeze(struct freeze *f, const struct dump_options *o)
{
	for (int attempt = 1;; attempt++) {
		int rc = freeze_tree(f, o->pid, o->tree);
		if (rc != FREEZE_CHANGED || attempt == FREEZE_ATTEMPTS || interrupted)
			return rc ? -1 : 0;
		cryo_warn("the tree changed while being frozen (%s); trying again", cryo_error());
		cryo_error_clear();
		usleep(2000u * (unsigned)attempt);
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
	if (write_image(&iw, &f, &o) || check_interrupted())
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
