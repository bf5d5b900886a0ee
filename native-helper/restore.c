/* cryo-helper restore [-i FILE|-] [--detach] [--skip-fd [PID:]N ...]
 *
 * Rebuilds the process tree of a .cryo image, from outside, with ptrace. The image is read in one
 * sequential pass (it may come from a pipe): the metadata and the blobs first, all checked before any
 * process is created; then the processes are created with their original PIDs and stopped; their
 * address spaces are rebuilt; the PAGEDATA sections are streamed straight into them; and finally
 * threads, registers and signal state are put back and everything is let go. A failure after the first
 * process exists kills and reaps every process created.
 *
 * The order of the steps, and why each one is where it is, is in the comments of the restore_*.c files:
 *   restore_model.c   metadata into the model (restore.h)
 *   restore_files.c   descriptors and pipes
 *   restore_proc.c    the tree, PIDs, sessions, and everything a process does for itself
 *   restore_remote.c  syscalls run inside a stopped tracee
 *   restore_mem.c     address spaces and page data
 *   restore_thread.c  threads, registers, xstate, signals, credentials */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "restore.h"

int rst_verbose;
static char rst_message[1024];
static int rst_have_message;

const char *rst_errname(int err)
{
	static char buf[32];
	const char *name = strerrorname_np(err);

	if (name)
		return name;
	snprintf(buf, sizeof buf, "errno %d", err);
	return buf;
}

int rst_fail(int err, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if (!rst_have_message) {
		va_start(ap, fmt);
		int n = vsnprintf(rst_message, sizeof rst_message, fmt, ap);
		va_end(ap);
		if (n < 0)
			n = 0;
		if (err && (size_t)n < sizeof rst_message)
			snprintf(rst_message + n, sizeof rst_message - n, ": %s", rst_errname(err));
		rst_have_message = 1;
	}
	errno = saved;
	return -1;
}

void rst_error_clear(void)
{
	rst_have_message = 0;
	rst_message[0] = 0;
}

const char *rst_error(void)
{
	return rst_have_message ? rst_message : "unknown error";
}

static void say(const char *kind, const char *fmt, va_list ap)
{
	fprintf(stderr, "cryo-helper restore: %s", kind);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void rst_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say("warning: ", fmt, ap);
	va_end(ap);
}

void rst_note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say("", fmt, ap);
	va_end(ap);
}

static void usage(void)
{
	fprintf(stderr, "usage: cryo-helper restore [-i FILE|-] [--detach] [--skip-fd [PID:]N ...] [-v]\n");
}

static int parse_skip(struct rst_options *o, const char *arg)
{
	struct rst_skip *n = realloc(o->skips, (o->nskips + 1) * sizeof *n);
	char *end;
	long a, b = -1;

	if (!n)
		return -1;
	o->skips = n;
	a = strtol(arg, &end, 10);
	if (*end == ':')
		b = strtol(end + 1, &end, 10);
	if (*end || a < 0 || (b == -1 && end == arg)) {
		fprintf(stderr, "cryo-helper restore: --skip-fd wants N or PID:N, not '%s'\n", arg);
		return -1;
	}
	o->skips[o->nskips].pid = b >= 0 ? (int)a : 0;
	o->skips[o->nskips].fd = b >= 0 ? (int)b : (int)a;
	o->nskips++;
	return 0;
}

static int parse_args(int argc, char **argv, struct rst_options *o)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-i") && i + 1 < argc)
			o->input = argv[++i];
		else if (!strcmp(argv[i], "--detach"))
			o->detach = 1;
		else if (!strcmp(argv[i], "--skip-fd") && i + 1 < argc) {
			if (parse_skip(o, argv[++i]))
				return -1;
		} else if (!strcmp(argv[i], "-v"))
			rst_verbose = 1;
		else {
			usage();
			return -1;
		}
	}
	if (!o->input)
		o->input = "-";
	return 0;
}

/* ---- phase 1: metadata ---- */

static int load_section(struct rst_image *img, struct img_reader *r, const struct img_section *s)
{
	unsigned char *buf;
	int rc;

	if (s->h.type == CRYO_SEC_PAGEDATA)
		return rst_fail(0, "internal: PAGEDATA in the metadata phase");
	if (s->h.type != CRYO_SEC_IMAGE_META && s->h.type != CRYO_SEC_PROCESS && s->h.type != CRYO_SEC_PAGEMAP &&
	    s->h.type != CRYO_SEC_BLOB)
		return img_skip(r, s) ? rst_fail(0, "%s", r->err) : 0; /* unknown type: kept by rewriters, not used */
	buf = malloc(s->h.raw_length ? s->h.raw_length : 1);
	if (!buf)
		return rst_fail(ENOMEM, "allocating %llu bytes for a %s section", (unsigned long long)s->h.raw_length,
				img_type_name(s->h.type));
	if (img_payload(r, s, buf)) {
		free(buf);
		return rst_fail(0, "%s", r->err);
	}
	switch (s->h.type) {
	case CRYO_SEC_IMAGE_META:
		return rst_load_meta(img, s, buf);        /* keeps buf */
	case CRYO_SEC_PROCESS:
		if (!img->meta) {
			free(buf);
			return rst_fail(0, "image byte %llu: PROCESS before IMAGE_META", (unsigned long long)s->offset);
		}
		return rst_load_process(img, s, buf);     /* keeps buf */
	case CRYO_SEC_PAGEMAP:
		rc = rst_load_pagemap(img, s, buf);
		break;
	default:
		rc = rst_load_blob(img, s, buf);
		break;
	}
	free(buf);
	return rc;
}

/* Reads everything up to the first PAGEDATA (left in *pending) or the end of the image. */
static int read_metadata(struct rst_image *img, struct img_reader *r, struct img_section *pending, int *have)
{
	for (;;) {
		int n = img_next(r, pending);
		if (n < 0)
			return rst_fail(0, "%s", r->err);
		if (n == 0) {
			*have = 0;
			return 0;
		}
		if (pending->h.type == CRYO_SEC_PAGEDATA) {
			*have = 1;
			return 0;
		}
		if (load_section(img, r, pending))
			return -1;
	}
}

/* ---- checks before anything is created ---- */

static uint64_t own_cap(const char *key)
{
	char line[256];
	unsigned long long v = 0;
	FILE *f = fopen("/proc/self/status", "r");
	size_t klen = strlen(key);

	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, key, klen) && sscanf(line + klen, " %llx", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* Root restores the image's own credentials (restore_thread.c). Anyone else may only restore a
 * process that had exactly their uids and gids and no capability they lack; no seccomp filter of the
 * image is restored, so an image that had one is refused unless the restorer runs under one too. */
static int check_privilege(struct rst_image *img)
{
	uint64_t caps = own_cap("CapEff:");
	int own_seccomp = (int)own_cap("Seccomp:");

	for (int i = 0; i < img->nprocs; i++) {
		struct rst_proc *p = &img->procs[i];
		/* without them the process would keep the restorer's (root's) identity */
		if (p->uid[0] < 0 || p->uid[1] < 0 || p->uid[2] < 0 || p->gid[0] < 0 || p->gid[1] < 0 ||
		    p->gid[2] < 0)
			return rst_fail(0, "process %d has no creds.uid or creds.gid in the image; refusing to "
					"restore it (nothing was restored)", p->pid);
		if (p->seccomp && p->seccomp != own_seccomp)
			return rst_fail(0, "process %d ran under seccomp mode %lld; seccomp filters are not "
					"restored, refusing to restore it without them", p->pid, (long long)p->seccomp);
		if (geteuid() == 0)
			continue;
		for (int k = 0; k < 4; k++)
			if ((p->uid[k] >= 0 && p->uid[k] != (int64_t)getuid()) ||
			    (p->gid[k] >= 0 && p->gid[k] != (int64_t)getgid()))
				return rst_fail(0, "process %d ran as uid %lld gid %lld; only root may restore "
						"another user's process", p->pid, (long long)p->uid[1],
						(long long)p->gid[1]);
		if ((p->cap_prm | p->cap_eff | p->cap_inh | p->cap_amb) & ~caps)
			return rst_fail(0, "process %d held capabilities %#llx that the restorer lacks", p->pid,
					(unsigned long long)((p->cap_prm | p->cap_eff | p->cap_inh | p->cap_amb) & ~caps));
	}
	return 0;
}

static int preflight(struct rst_image *img)
{
	return rst_check_model(img) || rst_preflight_pids(img) || check_privilege(img) || rst_check_cpu(img) ||
	       rst_check_vdso_layout(img) || rst_check_file_vmas(img) || rst_plan_fds(img) ||
	       rst_plan_shared(img) ? -1 : 0;
}

/* ---- the trampoline area ---- */

#define TRAMP_PAGES 80

static int clashes(struct rst_image *img, uint64_t start, uint64_t end)
{
	const uint64_t margin = 2 << 20; /* keep clear of stack guard gaps */

	for (int i = 0; i < img->nprocs; i++)
		for (int k = 0; k < img->procs[i].nvmas; k++) {
			struct rst_vma *v = &img->procs[i].vmas[k];
			if (start < v->end + margin && v->start < end + margin)
				return 1;
		}
	return 0;
}

/* Maps size bytes at an address free in the helper and far from every VMA of the image, so that the
 * mapping, inherited by the restored processes, never stands where their own memory goes. */
int rst_map_free_area(struct rst_image *img, size_t size, int prot, int flags, int fd, uint64_t *out)
{
	for (uint64_t a = 1ull << 32; a < 0x700000000000ull; a += 1ull << 30) {
		void *p;
		if (clashes(img, a, a + size))
			continue;
		p = mmap((void *)(uintptr_t)a, size, prot, flags | MAP_FIXED_NOREPLACE, fd, 0);
		if (p == MAP_FAILED)
			continue;
		*out = a;
		return 0;
	}
	return rst_fail(0, "no free area of %zu bytes outside the image's address spaces", size);
}

/* The trampoline area: page 0 holds the `syscall` instruction, then scratch pages, a stack, and room
 * to park the vDSO. Every child inherits it. */
static int map_trampoline(struct rst_image *img)
{
	size_t size = TRAMP_PAGES * 4096;
	unsigned char *p;

	if (rst_map_free_area(img, size, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			      &img->tramp))
		return -1;
	p = (unsigned char *)(uintptr_t)img->tramp;
	memset(p, 0xcc, 4096);
	p[0] = 0x0f; /* syscall */
	p[1] = 0x05;
	img->tramp_size = size;
	return 0;
}

/* ---- phase 2: processes and memory ---- */

static int seize_all(struct rst_image *img)
{
	for (int i = 0; i < img->nprocs; i++) {
		struct rst_proc *p = &img->procs[i];
		p->tasks = calloc(p->nthreads, sizeof *p->tasks);
		if (!p->tasks)
			return rst_fail(ENOMEM, "allocating threads of %d", p->pid);
		p->ntasks = 1;
		if (rst_task_seize(&p->tasks[0], p->pid, img))
			return -1;
	}
	return 0;
}

static int stream_pages(struct rst_image *img, struct img_reader *r, struct img_section *s, int have)
{
	unsigned char *buf = malloc(CRYO_MAX_DATA_SECTION);
	int rc = -1;

	if (!buf)
		return rst_fail(ENOMEM, "allocating the page buffer");
	while (have) {
		if (s->h.type == CRYO_SEC_PAGEDATA) {
			struct rst_proc *p = rst_find_proc(img, (int)s->h.owner);
			if (!p) {
				rst_fail(0, "image byte %llu: PAGEDATA for process %u, which is not in the image",
					 (unsigned long long)s->offset, s->h.owner);
				goto out;
			}
			if (img_payload(r, s, buf)) {
				rst_fail(0, "%s", r->err);
				goto out;
			}
			if (rst_write_pages(img, p, s->h.key, buf, s->h.raw_length))
				goto out;
		} else if (s->h.type >= CRYO_SEC_IMAGE_META && s->h.type <= CRYO_SEC_BLOB) {
			rst_fail(0, "image byte %llu: %s section after the page data: the image is not in "
				 "streaming order (FORMAT.md §4)", (unsigned long long)s->offset,
				 img_type_name(s->h.type));
			goto out;
		} else if (img_skip(r, s)) {
			rst_fail(0, "%s", r->err);
			goto out;
		}
		have = img_next(r, s);
		if (have < 0) {
			rst_fail(0, "%s", r->err);
			goto out;
		}
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

static int rebuild(struct rst_image *img, struct img_reader *r, struct img_section *s, int have)
{
	if (seize_all(img))
		return -1;
	/* the helper's descriptors go only once the memfds are mapped */
	for (int i = 0; i < img->nprocs; i++)
		if (rst_rebuild_mm(img, &img->procs[i]) || rst_close_helper_fds(img, &img->procs[i].tasks[0]))
			return -1;
	if (stream_pages(img, r, s, have))
		return -1;
	for (int i = 0; i < img->nprocs; i++)
		if (rst_finish_mm(img, &img->procs[i]) || rst_finish_process(img, &img->procs[i]))
			return -1;
	/* children first, so a parent never runs before its children are whole */
	for (int i = img->nprocs - 1; i >= 0; i--)
		if (rst_detach_process(img, &img->procs[i]))
			return -1;
	return 0;
}

/* ---- phase 3: waiting ---- */

static volatile sig_atomic_t forward_to;

static void forward(int sig)
{
	if (forward_to > 0)
		kill(forward_to, sig);
}

/* Waits for the root, forwarding SIGINT/SIGTERM/SIGHUP to it, then reaps the orphans of the tree that
 * came to the helper (a subreaper), so nothing is left as a zombie. 128+signal if it was killed. */
static int wait_root(int root)
{
	struct sigaction sa;
	int st, status = 1;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = forward;
	forward_to = root;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	for (;;) {
		pid_t r = waitpid(root, &st, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rst_fail(errno, "waiting for the restored process %d", root);
			return 1;
		}
		break;
	}
	forward_to = 0;
	status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	rst_reap_all();
	return status;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int cmd_restore(int argc, char **argv)
{
	struct rst_options opts;
	struct rst_image img;
	struct img_reader reader;
	struct img_section pending;
	int fd, have = 0, rc = 1, created = 0;
	double t0 = now();

	memset(&opts, 0, sizeof opts);
	memset(&img, 0, sizeof img);
	memset(&reader, 0, sizeof reader);
	img.opts = &opts;
	img.ready_rd = img.ready_wr = -1;
	if (parse_args(argc, argv, &opts))
		return 2;
	fd = strcmp(opts.input, "-") ? open(opts.input, O_RDONLY | O_CLOEXEC) : 0;
	if (fd < 0) {
		rst_fail(errno, "opening %s", opts.input);
		goto out;
	}
	if (img_open(&reader, fd)) {
		rst_fail(0, "%s", reader.err);
		goto out;
	}
	if (read_metadata(&img, &reader, &pending, &have) || preflight(&img) || rst_precheck_vdso(&img, &reader))
		goto out;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (map_trampoline(&img) || rst_prepare_pipes(&img) || rst_prepare_shared(&img) || rst_prepare_sockets(&img))
		goto out;
	created = 1;
	if (rst_create_tree(&img) || rebuild(&img, &reader, &pending, have))
		goto out;
	rst_close_pipes(&img);
	rst_release_shared(&img);
	rst_close_sockets(&img);
	if (rst_verbose)
		rst_note("restored %d process(es) in %.3f s", img.nprocs, now() - t0);
	if (opts.detach) {
		rc = 0;
		goto out;
	}
	rc = wait_root(img.procs[0].pid);
	created = 0;
out:
	if (rc && created) {
		rst_kill_all(&img);
		rst_reap_all();
		fprintf(stderr, "cryo-helper restore: %s (every process created was killed and reaped)\n",
			rst_error());
	} else if (rc == 1 && rst_have_message) {
		fprintf(stderr, "cryo-helper restore: %s\n", rst_error());
	}
	img_close(&reader);
	rst_free_image(&img);
	free(opts.skips);
	return rc;
}
