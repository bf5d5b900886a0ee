/* See files.h. */
#include "files.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "errmsg.h"
#include "format.h"
#include "proc.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

/* Everything we learn about one descriptor before encoding it. */
struct fd_info {
	int fd;
	char *link;          /* /proc/PID/fd/N target as read */
	char *path;          /* link without " (deleted)" */
	int deleted;
	struct stat st;
	int have_stat;
	unsigned long long pos;
	unsigned flags;
	int mnt_id;
	char *fdinfo;        /* the fdinfo text */
	const char *type;
};

/* ---------------------------------------------------------------- blobs */

void blobs_init(struct blobs *b)
{
	memset(b, 0, sizeof *b);
	b->next_id = 1;
}

static struct blob *find_blob(struct blobs *b, dev_t dev, ino_t ino, int is_pipe)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->v[i].dev == dev && b->v[i].ino == ino && b->v[i].is_pipe == is_pipe)
			return &b->v[i];
	return NULL;
}

static struct blob *add_blob(struct blobs *b)
{
	struct blob *v = realloc(b->v, (b->n + 1) * sizeof *v);

	if (!v) {
		cryo_fail(ENOMEM, "track blob");
		return NULL;
	}
	b->v = v;
	memset(&v[b->n], 0, sizeof *v);
	v[b->n].fd = -1;
	v[b->n].id = b->next_id++;
	return &v[b->n++];
}

static int write_file_blob(struct image_writer *w, struct blob *bl, unsigned char *buf)
{
	off_t off = 0;

	for (;;) {
		ssize_t n = pread(bl->fd, buf, CRYO_MAX_DATA_SECTION, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cryo_fail(errno, "read deleted file (inode %" PRIu64 ") for blob %" PRIu64,
					 (uint64_t)bl->ino, bl->id);
		if (n == 0)
			return 0;
		if (iw_section(w, CRYO_SEC_BLOB, bl->owner, bl->id, buf, (size_t)n))
			return -1;
		off += n;
	}
}

int blobs_write(struct image_writer *w, struct blobs *b)
{
	unsigned char *buf = NULL;
	int rc = 0;

	for (size_t i = 0; i < b->n && !rc; i++) {
		struct blob *bl = &b->v[i];
		if (bl->is_pipe) {
			rc = iw_blob(w, bl->owner, bl->id, bl->data, bl->len);
			continue;
		}
		if (!buf && !(buf = malloc(CRYO_MAX_DATA_SECTION)))
			return cryo_fail(ENOMEM, "allocate blob buffer");
		rc = write_file_blob(w, bl, buf);
	}
	free(buf);
	return rc;
}

void blobs_free(struct blobs *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->v[i].data);
		if (b->v[i].fd >= 0)
			close(b->v[i].fd);
	}
	free(b->v);
	blobs_init(b);
}

/* ---------------------------------------------------------------- descriptor facts */

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

static const char *anon_type(const char *link)
{
	static const struct { const char *name, *type; } table[] = {
		{ "anon_inode:[eventfd]", "eventfd" },   { "anon_inode:[eventpoll]", "epoll" },
		{ "anon_inode:[timerfd]", "timerfd" },   { "anon_inode:[signalfd]", "signalfd" },
		{ "anon_inode:inotify", "inotify" },     { "anon_inode:[fanotify]", "fanotify" },
		{ "anon_inode:[pidfd]", "pidfd" },
	};
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (!strcmp(link, table[i].name))
			return table[i].type;
	return "anon";
}

/* Character devices that are terminals: /dev/tty* (4), /dev/tty, console, ptmx (5), ptys (136-143). */
static int is_tty_dev(dev_t rdev)
{
	unsigned maj = major(rdev);
	return maj == 4 || maj == 5 || (maj >= 136 && maj <= 143);
}

static const char *fd_type(const struct fd_info *f)
{
	if (!strncmp(f->link, "pipe:", 5))
		return "pipe";
	if (!strncmp(f->link, "socket:", 7))
		return "socket";
	if (!strncmp(f->link, "anon_inode:", 11))
		return anon_type(f->link);
	if (!strncmp(f->link, "/memfd:", 7))
		return "memfd";
	if (!f->have_stat)
		return "unknown";
	switch (f->st.st_mode & S_IFMT) {
	case S_IFREG:
		return "file";
	case S_IFDIR:
		return "dir";
	case S_IFIFO:
		return "fifo";
	case S_IFSOCK:
		return "socket";
	case S_IFCHR:
		return is_tty_dev(f->st.st_rdev) ? "tty" : "chr";
	case S_IFBLK:
		return "blk";
	}
	return "unknown";
}

static int read_fd_info(pid_t pid, int fd, struct fd_info *f)
{
	char path[64];
	const char *p;

	memset(f, 0, sizeof *f);
	f->fd = fd;
	snprintf(path, sizeof path, "/proc/%d/fd/%d", pid, fd);
	if (proc_readlink(path, &f->link))
		return -1;
	f->have_stat = stat(path, &f->st) == 0;
	f->deleted = f->link[0] == '/' && ends_with(f->link, " (deleted)");
	f->path = strndup(f->link, strlen(f->link) - (f->deleted ? strlen(" (deleted)") : 0));
	if (!f->path)
		return cryo_fail(ENOMEM, "copy path of fd %d", fd);
	if (proc_readf(&f->fdinfo, NULL, "/proc/%d/fdinfo/%d", pid, fd))
		return -1;
	if ((p = proc_field(f->fdinfo, "pos")))
		f->pos = strtoull(p, NULL, 10);
	if ((p = proc_field(f->fdinfo, "flags")))
		f->flags = (unsigned)strtoul(p, NULL, 8);
	if ((p = proc_field(f->fdinfo, "mnt_id")))
		f->mnt_id = atoi(p);
	f->type = fd_type(f);
	return 0;
}

static void free_fd_info(struct fd_info *f)
{
	free(f->link);
	free(f->path);
	free(f->fdinfo);
}

/* A duplicate of the target's descriptor in our own table (same open file description). */
static int grab_fd(pid_t pid, int fd)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (pidfd < 0)
		return cryo_fail(errno, "pidfd_open process %d", pid);
	int mine = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	int err = errno;
	close(pidfd);
	if (mine < 0)
		return cryo_fail(err, "pidfd_getfd fd %d of process %d", fd, pid);
	return mine;
}

/* ---------------------------------------------------------------- pipes */

/* A descriptor we may read the pipe through: the target's own if it is a read end (no new reader
 * appears on the pipe), else a new read-only open of the same pipe through /proc. */
static int pipe_reader(pid_t pid, const struct fd_info *f)
{
	char path[64];

	if ((f->flags & O_ACCMODE) != O_WRONLY)
		return grab_fd(pid, f->fd);
	snprintf(path, sizeof path, "/proc/%d/fd/%d", pid, f->fd);
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return cryo_fail(errno, "open %s to read its pipe", path);
	return fd;
}

/* Copies the bytes waiting in the pipe without consuming them: tee() duplicates the pipe's buffers
 * into a pipe of ours (as large as the source), which we then read. */
static int peek_pipe(int src, unsigned char **data, size_t *len, int fd_no)
{
	int avail = 0, p[2] = { -1, -1 }, rc = -1;
	unsigned char *buf = NULL;

	*data = NULL, *len = 0;
	if (ioctl(src, FIONREAD, &avail) < 0)
		return cryo_fail(errno, "FIONREAD on the pipe of fd %d", fd_no);
	if (avail <= 0)
		return 0;
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return cryo_fail(errno, "create a pipe to copy the pipe of fd %d", fd_no);
	int size = fcntl(src, F_GETPIPE_SZ);
	if (size > 0 && fcntl(p[1], F_SETPIPE_SZ, size) < 0 && size > avail) {
		cryo_fail(errno, "size our pipe to %d bytes for fd %d", size, fd_no);
		goto out;
	}
	ssize_t n = tee(src, p[1], (size_t)avail, SPLICE_F_NONBLOCK);
	if (n < 0) {
		cryo_fail(errno, "tee the pipe of fd %d", fd_no);
		goto out;
	}
	if (n != avail) {
		cryo_fail(0, "tee the pipe of fd %d: copied %zd of %d bytes", fd_no, n, avail);
		goto out;
	}
	buf = malloc((size_t)n);
	if (!buf) {
		cryo_fail(ENOMEM, "copy the pipe of fd %d", fd_no);
		goto out;
	}
	for (ssize_t got = 0; got < n;) {
		ssize_t r = read(p[0], buf + got, (size_t)(n - got));
		if (r <= 0) {
			cryo_fail(r < 0 ? errno : EIO, "read back the copy of the pipe of fd %d", fd_no);
			goto out;
		}
		got += r;
	}
	*data = buf, *len = (size_t)n;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	close(p[0]);
	close(p[1]);
	return rc;
}

static struct blob *pipe_blob(pid_t pid, const struct fd_info *f, struct blobs *b)
{
	struct blob *bl = find_blob(b, f->st.st_dev, f->st.st_ino, 1);

	if (bl)
		return bl;
	int src = pipe_reader(pid, f);
	if (src < 0)
		return NULL;
	unsigned char *data;
	size_t len;
	int rc = peek_pipe(src, &data, &len, f->fd);
	close(src);
	if (rc || !(bl = add_blob(b))) {
		if (!rc)
			free(data);
		return NULL;
	}
	bl->owner = 0;
	bl->dev = f->st.st_dev, bl->ino = f->st.st_ino;
	bl->is_pipe = 1;
	bl->data = data, bl->len = len;
	return bl;
}

static int encode_pipe(struct mpw *w, pid_t pid, const struct fd_info *f, struct blobs *b)
{
	struct blob *bl = pipe_blob(pid, f, b);

	if (!bl)
		return -1;
	mpw_str(w, "pipe");
	mpw_map(w);
	mpw_kuint(w, "inode", (uint64_t)f->st.st_ino);
	if (bl->len)
		mpw_kuint(w, "dataBlob", bl->id);
	mpw_kuint(w, "dataLength", bl->len);
	mpw_end(w);
	return 0;
}

/* ---------------------------------------------------------------- deleted files */

static int encode_content(struct mpw *w, pid_t pid, const struct fd_info *f, struct blobs *b)
{
	struct blob *bl = find_blob(b, f->st.st_dev, f->st.st_ino, 0);

	if (!bl) {
		char path[64];
		snprintf(path, sizeof path, "/proc/%d/fd/%d", pid, f->fd);
		/* A new read-only open of the same inode: it has its own offset, so reading it leaves the
		 * target's file position alone (a pidfd_getfd duplicate would share it). */
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			return cryo_fail(errno, "open %s to save the deleted file's content", path);
		if (!(bl = add_blob(b))) {
			close(fd);
			return -1;
		}
		bl->owner = (uint32_t)pid;
		bl->dev = f->st.st_dev, bl->ino = f->st.st_ino;
		bl->fd = fd;
	}
	mpw_kuint(w, "contentBlob", bl->id);
	return 0;
}

/* ---------------------------------------------------------------- sockets */

static void format_addr(const struct sockaddr_storage *ss, socklen_t len, char *out, size_t size)
{
	char ip[INET6_ADDRSTRLEN];

	out[0] = 0;
	if (len < sizeof(sa_family_t))
		return;
	switch (ss->ss_family) {
	case AF_UNIX: {
		const struct sockaddr_un *un = (const void *)ss;
		size_t n = len - offsetof(struct sockaddr_un, sun_path);
		if (n == 0)
			return;
		if (un->sun_path[0] == 0) /* abstract: shown as "@name" */
			snprintf(out, size, "@%.*s", (int)(n - 1), un->sun_path + 1);
		else
			snprintf(out, size, "%.*s", (int)strnlen(un->sun_path, n), un->sun_path);
		return;
	}
	case AF_INET: {
		const struct sockaddr_in *in = (const void *)ss;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
		snprintf(out, size, "%s:%u", ip, ntohs(in->sin_port));
		return;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *in6 = (const void *)ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
		snprintf(out, size, "[%s]:%u", ip, ntohs(in6->sin6_port));
		return;
	}
	case AF_NETLINK: {
		const struct sockaddr_nl *nl = (const void *)ss;
		snprintf(out, size, "%u:%u", nl->nl_pid, nl->nl_groups);
		return;
	}
	}
}

static const char *family_name(int family)
{
	switch (family) {
	case AF_UNIX: return "unix";
	case AF_INET: return "inet";
	case AF_INET6: return "inet6";
	case AF_NETLINK: return "netlink";
	}
	return "other";
}

static const char *type_name(int type)
{
	switch (type) {
	case SOCK_STREAM: return "stream";
	case SOCK_DGRAM: return "dgram";
	case SOCK_SEQPACKET: return "seqpacket";
	case SOCK_RAW: return "raw";
	case SOCK_RDM: return "rdm";
	}
	return "other";
}

static const char *tcp_state_name(int state)
{
	static const char *names[] = { "", "established", "syn-sent", "syn-recv", "fin-wait1", "fin-wait2",
				       "time-wait", "close", "close-wait", "last-ack", "listen", "closing",
				       "new-syn-recv" };
	return state > 0 && state < (int)(sizeof names / sizeof names[0]) ? names[state] : "unknown";
}

static int sockopt_int(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof v;
	if (getsockopt(fd, level, name, &v, &len) < 0)
		return -1;
	return v;
}

static const char *socket_state(int s, int family, int type, int protocol, int peer_ok)
{
	if (sockopt_int(s, SOL_SOCKET, SO_ACCEPTCONN) == 1)
		return "listen";
	if ((family == AF_INET || family == AF_INET6) && type == SOCK_STREAM && protocol == IPPROTO_TCP) {
		struct tcp_info ti;
		socklen_t len = sizeof ti;
		if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0)
			return tcp_state_name(ti.tcpi_state);
	}
	return peer_ok ? "connected" : "unconnected";
}

/* The socket is examined through a duplicate in our table: getsockopt/getsockname answer exactly,
 * whatever the namespace. (Receiving a socket updates its cgroup classid/netprio to ours; harmless
 * for a dump taken from the same cgroup.) */
static int encode_socket(struct mpw *w, pid_t pid, const struct fd_info *f)
{
	struct sockaddr_storage local, peer;
	socklen_t llen = sizeof local, plen = sizeof peer;
	char lbuf[256], pbuf[256];
	int s = grab_fd(pid, f->fd);

	if (s < 0)
		return -1;
	int family = sockopt_int(s, SOL_SOCKET, SO_DOMAIN);
	int type = sockopt_int(s, SOL_SOCKET, SO_TYPE);
	int protocol = sockopt_int(s, SOL_SOCKET, SO_PROTOCOL);
	if (getsockname(s, (struct sockaddr *)&local, &llen) < 0)
		llen = 0;
	int peer_ok = getpeername(s, (struct sockaddr *)&peer, &plen) == 0;
	format_addr(&local, llen, lbuf, sizeof lbuf);
	format_addr(&peer, peer_ok ? plen : 0, pbuf, sizeof pbuf);
	mpw_str(w, "socket");
	mpw_map(w);
	mpw_kstr(w, "family", family_name(family));
	mpw_kstr(w, "type", type_name(type));
	mpw_kint(w, "protocol", protocol);
	mpw_kstr(w, "state", socket_state(s, family, type, protocol, peer_ok));
	mpw_ktext(w, "local", lbuf);
	mpw_ktext(w, "peer", pbuf);
	mpw_kuint(w, "inode", f->have_stat ? (uint64_t)f->st.st_ino : 0);
	mpw_end(w);
	close(s);
	return 0;
}

/* ---------------------------------------------------------------- encoding */

struct fdinfo_line {
	const char *key, *value;
	size_t klen, vlen;
};

static int is_own_key(const struct fdinfo_line *l)
{
	static const char *own[] = { "pos", "flags", "mnt_id", "ino" };

	for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
		if (strlen(own[i]) == l->klen && !strncmp(own[i], l->key, l->klen))
			return 1;
	return 0;
}

static size_t split_fdinfo(const char *text, struct fdinfo_line *v, size_t max)
{
	size_t n = 0;

	for (const char *line = text; *line && n < max;) {
		size_t len = strcspn(line, "\n");
		const char *colon = memchr(line, ':', len);
		if (colon) {
			const char *value = colon + 1 + strspn(colon + 1, " \t");
			v[n] = (struct fdinfo_line){ line, value, (size_t)(colon - line), (size_t)(line + len - value) };
			if (!is_own_key(&v[n]))
				n++;
		}
		line += len + (line[len] != 0);
	}
	return n;
}

static int same_key(const struct fdinfo_line *a, const struct fdinfo_line *b)
{
	return a->klen == b->klen && !strncmp(a->key, b->key, a->klen);
}

/* fdinfo lines other than those with keys of their own, as name -> text. A repeated key (epoll
 * "tfd", inotify "inotify") keeps all its values, in order, joined by newlines. */
static void encode_fdinfo(struct mpw *w, const char *text)
{
	size_t max = 1;

	for (const char *p = text; *p; p++)
		max += *p == '\n';
	struct fdinfo_line *v = calloc(max, sizeof *v);
	char *joined = malloc(strlen(text) + 1);
	size_t n = v && joined ? split_fdinfo(text, v, max) : 0;

	mpw_map(w);
	for (size_t i = 0; i < n; i++) {
		size_t j, len = 0;
		for (j = 0; j < i && !same_key(&v[j], &v[i]); j++)
			;
		if (j < i)
			continue; /* written with the key's first line */
		for (j = i; j < n; j++) {
			if (!same_key(&v[j], &v[i]))
				continue;
			if (len)
				joined[len++] = '\n';
			memcpy(joined + len, v[j].value, v[j].vlen);
			len += v[j].vlen;
		}
		mpw_text(w, v[i].key, v[i].klen);
		mpw_text(w, joined, len);
	}
	mpw_end(w);
	free(v);
	free(joined);
}

static void encode_stat(struct mpw *w, const struct stat *st)
{
	mpw_kuint(w, "mode", st->st_mode);
	mpw_kint(w, "size", (int64_t)st->st_size);
	mpw_kuint(w, "dev", (uint64_t)st->st_dev);
	mpw_kuint(w, "rdev", (uint64_t)st->st_rdev);
	mpw_kuint(w, "inode", (uint64_t)st->st_ino);
	mpw_kuint(w, "nlink", (uint64_t)st->st_nlink);
	mpw_kint(w, "mtime", (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec);
}

static int encode_fd(struct mpw *w, pid_t pid, struct fd_info *f, struct blobs *b)
{
	int rc = 0;

	mpw_map(w);
	mpw_kint(w, "fd", f->fd);
	mpw_kstr(w, "type", f->type);
	mpw_ktext(w, "path", f->path);
	mpw_kuint(w, "flags", f->flags);
	mpw_kbool(w, "cloexec", (f->flags & O_CLOEXEC) != 0);
	mpw_kuint(w, "pos", f->pos);
	mpw_kint(w, "mntId", f->mnt_id);
	if (f->have_stat)
		encode_stat(w, &f->st);
	mpw_kbool(w, "deleted", f->deleted);
	if (f->have_stat && S_ISREG(f->st.st_mode) && (f->deleted || !strcmp(f->type, "memfd")))
		rc = encode_content(w, pid, f, b);
	else if (!strcmp(f->type, "pipe") || !strcmp(f->type, "fifo"))
		rc = f->have_stat ? encode_pipe(w, pid, f, b) : cryo_fail(0, "stat the pipe of fd %d", f->fd);
	else if (!strcmp(f->type, "socket"))
		rc = encode_socket(w, pid, f);
	mpw_str(w, "fdinfo");
	encode_fdinfo(w, f->fdinfo);
	mpw_end(w);
	return rc;
}

int files_encode(struct mpw *w, pid_t pid, struct blobs *b)
{
	char dir[64];
	long *fds;
	size_t n;
	int rc = 0;

	snprintf(dir, sizeof dir, "/proc/%d/fd", pid);
	if (proc_list_numbers(dir, &fds, &n))
		return -1;
	mpw_array(w);
	for (size_t i = 0; i < n && !rc; i++) {
		struct fd_info f;
		rc = read_fd_info(pid, (int)fds[i], &f);
		if (!rc)
			rc = encode_fd(w, pid, &f, b);
		free_fd_info(&f);
	}
	mpw_end(w);
	free(fds);
	return rc;
}
