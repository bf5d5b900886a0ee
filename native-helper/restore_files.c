/* File descriptors (FORMAT.md §6.5). The plan (what each descriptor becomes, and the refusals) is made
 * before any process exists. Pipes are created once in the helper, filled with their waiting bytes,
 * and inherited by the whole tree, so every process that had an end of one pipe gets an end of the
 * same new pipe. Everything else is opened by each restored process itself, while it still runs the
 * helper's code (restore_proc.c), then moved to its number with dup2.
 *
 * Descriptors 0-2 that lead outside the image (a pipe or socket to the program that started the
 * original, a terminal) cannot be rebuilt; they are taken from the restorer's own 0-2, the way a
 * shell job gets the shell's terminal. Any other descriptor that cannot be rebuilt is refused, unless
 * --skip-fd replaces it with /dev/null. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "restore.h"

static int is_skipped(const struct rst_image *img, int pid, int fd)
{
	for (int i = 0; i < img->opts->nskips; i++)
		if (img->opts->skips[i].fd == fd && (!img->opts->skips[i].pid || img->opts->skips[i].pid == pid))
			return 1;
	return 0;
}

static int pipe_slot(struct rst_image *img, uint64_t inode, int64_t blob)
{
	for (int i = 0; i < img->npipes; i++)
		if (img->pipes[i].inode == inode)
			return i;
	struct rst_pipe *n = realloc(img->pipes, (img->npipes + 1) * sizeof *n);
	if (!n)
		return rst_fail(ENOMEM, "allocating pipes");
	img->pipes = n;
	memset(&n[img->npipes], 0, sizeof *n);
	n[img->npipes].inode = inode;
	n[img->npipes].blob = blob;
	n[img->npipes].fds[0] = n[img->npipes].fds[1] = -1;
	return img->npipes++;
}

static int refuse(const struct rst_proc *p, const struct rst_fd *f, const char *why)
{
	return rst_fail(0, "process %d (%s) fd %d: %s %s%s cannot be restored: %s; "
			"--skip-fd %d:%d replaces it with /dev/null", p->pid, p->comm ? p->comm : "?", f->fd,
			f->type, f->socket_desc ? f->socket_desc : f->path ? f->path : "",
			f->deleted ? " (deleted)" : "", why, p->pid, f->fd);
}

static int plan_path(const struct rst_proc *p, struct rst_fd *f, int want_dir)
{
	struct stat st;

	if (!f->path || f->path[0] != '/')
		return refuse(p, f, "it has no absolute path");
	if (stat(f->path, &st) < 0) {
		char why[160];
		snprintf(why, sizeof why, "stat: %s", rst_errname(errno));
		return refuse(p, f, why);
	}
	if (want_dir && !S_ISDIR(st.st_mode))
		return refuse(p, f, "the path is no longer a directory");
	if (!strcmp(f->type, "file") && f->inode && st.st_ino != f->inode)
		rst_warn("process %d fd %d: %s is another file than at dump time (inode %llu, was %llu)", p->pid,
			 f->fd, f->path, (unsigned long long)st.st_ino, (unsigned long long)f->inode);
	else if (!strcmp(f->type, "file") && S_ISREG(st.st_mode) && (uint64_t)st.st_size != f->size)
		rst_warn("process %d fd %d: %s has %llu bytes, %llu at dump time; the offset %lld is restored as "
			 "it was", p->pid, f->fd, f->path, (unsigned long long)st.st_size, (unsigned long long)f->size,
			 (long long)f->pos);
	return 0;
}

static int plan_one(struct rst_image *img, struct rst_proc *p, struct rst_fd *f)
{
	const char *t = f->type;

	if (is_skipped(img, p->pid, f->fd)) {
		f->action = FA_NULL;
		rst_note("process %d fd %d (%s %s): replaced with /dev/null (--skip-fd)", p->pid, f->fd, t,
			 f->socket_desc ? f->socket_desc : f->path ? f->path : "");
		return 0;
	}
	if (!strcmp(t, "pipe") && f->is_pipe) {
		int slot = pipe_slot(img, f->pipe_inode, f->pipe_blob);
		if (slot < 0)
			return -1;
		f->action = FA_PIPE;
		f->pipe_slot = slot;
		if ((f->flags & O_ACCMODE) == O_RDONLY)
			img->pipes[slot].readers++;
		else
			img->pipes[slot].writers++;
		return 0;
	}
	if ((!strcmp(t, "tty") || !strcmp(t, "socket")) && f->fd < 3) {
		f->action = FA_INHERIT;
		return 0;
	}
	if (!strcmp(t, "fifo")) {
		f->action = FA_FIFO;
		if (f->pipe_blob >= 0) {
			int slot = pipe_slot(img, f->pipe_inode, f->pipe_blob);
			if (slot < 0)
				return -1;
			img->pipes[slot].fifo = f->path;
		}
		return plan_path(p, f, 0);
	}
	if (!strcmp(t, "file") && f->deleted) {
		if (f->size && !rst_find_blob(img, f->content_blob))
			return refuse(p, f, "the image holds no content for this deleted file");
		f->action = FA_GHOST;
		return 0;
	}
	if (!strcmp(t, "dir")) {
		f->action = FA_DIR;
		return plan_path(p, f, 1);
	}
	if (!strcmp(t, "file") || !strcmp(t, "chr") || !strcmp(t, "tty") || !strcmp(t, "blk")) {
		f->action = FA_OPEN;
		return plan_path(p, f, 0);
	}
	if (!strcmp(t, "socket")) {
		const char *why;
		if (!rst_socket_restorable(f, &why))
			return refuse(p, f, why);
		f->action = FA_SOCKET;
		f->socket_slot = rst_socket_slot(img, f);
		return f->socket_slot < 0 ? -1 : 0;
	}
	if (!strcmp(t, "memfd"))
		return 0; /* restore_shared.c */
	if (rst_anonfd_action(f) >= 0) {
		f->action = rst_anonfd_action(f);
		return 0;
	}
	return refuse(p, f, "this descriptor type is not restored");
}

/* A pipe with only one end in the image: its peer is outside. On 0-2 the restorer's own stdio takes
 * its place; anywhere else it is refused. */
static int plan_outside_pipes(struct rst_image *img)
{
	for (int i = 0; i < img->nprocs; i++) {
		struct rst_proc *p = &img->procs[i];
		for (int k = 0; k < p->nfds; k++) {
			struct rst_fd *f = &p->fds[k];
			struct rst_pipe *pp;
			if (f->action != FA_PIPE)
				continue;
			pp = &img->pipes[f->pipe_slot];
			if (pp->readers && pp->writers)
				continue;
			if (f->fd < 3) {
				f->action = FA_INHERIT;
				continue;
			}
			return refuse(p, f, pp->readers ? "its write end is outside the image"
							 : "its read end is outside the image");
		}
	}
	return 0;
}

static int set_fd_base(struct rst_image *img)
{
	int maxfd = 2;
	struct rlimit rl;

	for (int i = 0; i < img->nprocs; i++)
		for (int k = 0; k < img->procs[i].nfds; k++)
			if (img->procs[i].fds[k].fd > maxfd)
				maxfd = img->procs[i].fds[k].fd;
	img->fd_base = maxfd + 1 < 16 ? 16 : maxfd + 1;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)img->fd_base + 2 * img->npipes + 64) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < (rlim_t)img->fd_base + 2 * img->npipes + 64)
			return rst_fail(0, "fd %d of the image is above what RLIMIT_NOFILE allows here", maxfd);
	}
	return 0;
}

int rst_plan_fds(struct rst_image *img)
{
	for (int i = 0; i < img->nprocs; i++)
		for (int k = 0; k < img->procs[i].nfds; k++)
			if (plan_one(img, &img->procs[i], &img->procs[i].fds[k]))
				return -1;
	if (plan_outside_pipes(img))
		return -1;
	return set_fd_base(img);
}

/* Moves fd to the first free number >= base; closes the original. */
static int lift(int fd, int base, const char *what)
{
	int n;

	if (fd < 0)
		return -1;
	n = fcntl(fd, F_DUPFD_CLOEXEC, base);
	if (n < 0) {
		rst_fail(errno, "moving the %s descriptor above %d", what, base);
		close(fd);
		return -1;
	}
	close(fd);
	return n;
}

static int fill_pipe(struct rst_image *img, struct rst_pipe *pp)
{
	struct rst_blob *b = pp->blob >= 0 ? rst_find_blob(img, pp->blob) : NULL;
	size_t done = 0;

	if (!b || !b->len)
		return 0;
	if (b->len > 65536 && fcntl(pp->fds[1], F_SETPIPE_SZ, (int)b->len) < 0)
		return rst_fail(errno, "F_SETPIPE_SZ %zu for pipe inode %llu", b->len,
				(unsigned long long)pp->inode);
	fcntl(pp->fds[1], F_SETFL, O_NONBLOCK);
	while (done < b->len) {
		ssize_t n = write(pp->fds[1], b->data + done, b->len - done);
		if (n < 0)
			return rst_fail(errno, "refilling pipe inode %llu with its %zu waiting bytes",
					(unsigned long long)pp->inode, b->len);
		done += n;
	}
	fcntl(pp->fds[1], F_SETFL, 0);
	return 0;
}

/* A FIFO's waiting bytes live as long as one of its ends is open: the helper writes them through a
 * read-write end of its own and keeps it until every restored process has opened its ends. */
static int prepare_fifo(struct rst_image *img, struct rst_pipe *pp)
{
	pp->fds[1] = lift(open(pp->fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC), img->fd_base, "FIFO");
	if (pp->fds[1] < 0)
		return rst_fail(errno, "opening FIFO %s to refill it", pp->fifo);
	return fill_pipe(img, pp);
}

static int save_stdio(struct rst_image *img)
{
	int stdin_is_image = img->opts->input && !strcmp(img->opts->input, "-");

	img->null_fd = lift(open("/dev/null", O_RDWR), img->fd_base, "/dev/null");
	if (img->null_fd < 0)
		return -1;
	for (int i = 0; i < 3; i++) {
		int fd = (i == 0 && stdin_is_image) ? -1 : fcntl(i, F_DUPFD_CLOEXEC, img->fd_base);
		img->stdio_fd[i] = fd >= 0 ? fd : img->null_fd;
	}
	return 0;
}

int rst_prepare_pipes(struct rst_image *img)
{
	if (save_stdio(img))
		return -1;
	for (int i = 0; i < img->npipes; i++) {
		struct rst_pipe *pp = &img->pipes[i];
		int fds[2];
		if (pp->fifo) {
			if (prepare_fifo(img, pp))
				return -1;
			continue;
		}
		if (!pp->readers || !pp->writers)
			continue; /* its ends became FA_INHERIT */
		if (pipe2(fds, O_CLOEXEC) < 0)
			return rst_fail(errno, "creating a pipe for inode %llu", (unsigned long long)pp->inode);
		pp->fds[0] = lift(fds[0], img->fd_base, "pipe");
		pp->fds[1] = lift(fds[1], img->fd_base, "pipe");
		if (pp->fds[0] < 0 || pp->fds[1] < 0 || fill_pipe(img, pp))
			return -1;
	}
	return 0;
}

void rst_close_pipes(struct rst_image *img)
{
	for (int i = 0; i < img->npipes; i++)
		for (int k = 0; k < 2; k++)
			if (img->pipes[i].fds[k] >= 0) {
				close(img->pipes[i].fds[k]);
				img->pipes[i].fds[k] = -1;
			}
}

/* ---- in the restored process, before it is handed to the tracer ---- */

static int open_flags(const struct rst_fd *f)
{
	return (f->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC)) | O_NOCTTY;
}

static int cfail(char *err, size_t len, int e, const char *fmt, const char *arg, int fd)
{
	int n = snprintf(err, len, fmt, arg, fd);
	if (e && n >= 0 && (size_t)n < len)
		snprintf(err + n, len - n, ": %s", rst_errname(e));
	return -1;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

/* A deleted file comes back as a new file with its old content, opened like the original and
 * unlinked again. If its old name is taken now, a name next to it is used. */
static int open_ghost(struct rst_image *img, struct rst_proc *p, struct rst_fd *f, char *err, size_t len)
{
	struct rst_blob *b = rst_find_blob(img, f->content_blob);
	char name[4200];
	int wfd, fd;
	struct stat st;

	snprintf(name, sizeof name, "%s", f->path ? f->path : "/tmp/cryo-ghost");
	if (lstat(name, &st) == 0)
		snprintf(name, sizeof name, "%s.cryo-ghost.%d.%d", f->path ? f->path : "/tmp/cryo", p->pid, f->fd);
	/* created with the image's fsuid/fsgid (restore_proc.c child_identity), so owned by its user; never
	 * with the setuid, setgid or sticky bit, which the image cannot be trusted with */
	wfd = open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, (f->mode & 0777) | 0200);
	if (wfd < 0)
		return cfail(err, len, errno, "recreating deleted file %s for fd %d", name, f->fd);
	if (b && write_all(wfd, b->data, b->len) < 0) {
		cfail(err, len, errno, "writing the content of deleted file %s for fd %d", name, f->fd);
		goto fail;
	}
	fchmod(wfd, f->mode & 0777);
	fd = open(name, open_flags(f));
	if (fd < 0) {
		cfail(err, len, errno, "reopening deleted file %s for fd %d", name, f->fd);
		goto fail;
	}
	unlink(name);
	close(wfd);
	return fd;
fail:
	unlink(name);
	close(wfd);
	return -1;
}

static int open_fifo(struct rst_fd *f, char *err, size_t len)
{
	/* a FIFO open blocks until the other end is open: hold a read-write end meanwhile */
	int keeper = open(f->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	int fd;

	if (keeper < 0)
		return cfail(err, len, errno, "opening FIFO %s for fd %d", f->path, f->fd);
	fd = open(f->path, open_flags(f) | O_NONBLOCK);
	if (fd < 0)
		cfail(err, len, errno, "opening FIFO %s for fd %d", f->path, f->fd);
	close(keeper);
	return fd;
}

/* Returns the descriptor to dup2 onto f->fd; *own says whether it must be closed afterwards. */
static int source_fd(struct rst_image *img, struct rst_proc *p, struct rst_fd *f, int *own, char *err,
		     size_t len)
{
	int fd;

	*own = 1;
	switch (f->action) {
	case FA_PIPE:
		*own = 0;
		return img->pipes[f->pipe_slot].fds[(f->flags & O_ACCMODE) == O_RDONLY ? 0 : 1];
	case FA_INHERIT:
		*own = 0;
		return img->stdio_fd[f->fd];
	case FA_NULL:
		*own = 0;
		return img->null_fd;
	case FA_MEMFD:
		*own = 0;
		return img->shared[f->shared_slot].fd;
	case FA_SOCKET:
		*own = 0;
		return img->sockets[f->socket_slot].fd;
	case FA_GHOST:
		return open_ghost(img, p, f, err, len);
	case FA_FIFO:
		return open_fifo(f, err, len);
	case FA_EVENTFD:
	case FA_SIGNALFD:
	case FA_TIMERFD:
	case FA_EPOLL:
		return rst_anonfd_open(f, err, len);
	case FA_DIR:
		fd = open(f->path, (f->flags & O_PATH) ? O_PATH | O_DIRECTORY : O_RDONLY | O_DIRECTORY);
		break;
	default:
		fd = open(f->path, open_flags(f));
		break;
	}
	if (fd < 0)
		return cfail(err, len, errno, "opening %s for fd %d", f->path, f->fd);
	return fd;
}

static int place_fd(struct rst_image *img, struct rst_proc *p, struct rst_fd *f, char *err, size_t len)
{
	int own, src = source_fd(img, p, f, &own, err, len);
	const int status = O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME;

	if (src < 0)
		return -1;
	if (src != f->fd) {
		if (dup2(src, f->fd) < 0)
			return cfail(err, len, errno, "dup2 of %s to fd %d", f->path ? f->path : f->type, f->fd);
		if (own)
			close(src);
	}
	if (f->action != FA_INHERIT && f->action != FA_NULL && !(f->flags & O_PATH) &&
	    fcntl(f->fd, F_SETFL, f->flags & status) < 0)
		return cfail(err, len, errno, "setting the flags of %s on fd %d", f->path ? f->path : f->type, f->fd);
	if (fcntl(f->fd, F_SETFD, f->cloexec ? FD_CLOEXEC : 0) < 0)
		return cfail(err, len, errno, "setting close-on-exec of %s on fd %d", f->type, f->fd);
	if ((f->action == FA_MEMFD || ((f->action == FA_OPEN || f->action == FA_GHOST) && !strcmp(f->type, "file"))) &&
	    f->pos > 0 &&
	    lseek(f->fd, f->pos, SEEK_SET) < 0)
		return cfail(err, len, errno, "seeking %s to the saved offset for fd %d", f->path, f->fd);
	return 0;
}

static int is_image_fd(const struct rst_proc *p, int fd)
{
	for (int k = 0; k < p->nfds; k++)
		if (p->fds[k].fd == fd)
			return 1;
	return 0;
}

int rst_child_fds(struct rst_image *img, struct rst_proc *p, char *err, size_t errlen)
{
	for (int k = 0; k < p->nfds; k++)
		if (place_fd(img, p, &p->fds[k], err, errlen))
			return -1;
	/* epoll watches refer to other descriptors by number: only now are they all there */
	for (int k = 0; k < p->nfds; k++)
		if (p->fds[k].action == FA_EPOLL && rst_epoll_watches(&p->fds[k], err, errlen))
			return -1;
	/* what the helper had below the base (its stdio, the image) is not the restored process's */
	for (int fd = 0; fd < img->fd_base; fd++)
		if (!is_image_fd(p, fd))
			close(fd);
	return 0;
}

/* The process closes the helper's descriptors itself once it is ready, but the helper may stop it
 * before it gets there: closing them again from inside the stopped process makes that race harmless. */
int rst_close_helper_fds(struct rst_image *img, struct rst_task *t)
{
	long r;

	if (rst_syscall(t, &r, SYS_close_range, img->fd_base, ~0u, 0, 0, 0, 0))
		return -1;
	if (r < 0)
		return rst_fail(-r, "closing the helper's descriptors (%d and up) in %d", img->fd_base, t->tid);
	return 0;
}
