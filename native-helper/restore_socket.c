/* Sockets that can be made again from what the image says (FORMAT.md §6.5 `socket`): listening stream
 * and seqpacket sockets and unconnected datagram sockets of the unix, inet and inet6 families, bound
 * to their old address. A connected socket has a peer that the image does not hold, and is refused
 * (restore_files.c). Like pipes, each socket (one per inode: a listening socket inherited by a tree of
 * workers stays one socket) is made in the helper before any process exists, so that an address now
 * taken is refused before anything is created; the processes inherit it and dup2 it into place. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "restore.h"

static char *field(const struct rst_fd *f, const char *key)
{
	const struct mp_node *sock = mp_get(f->fdinfo_parent, "socket");
	return mp_strdup(mp_get(sock, key));
}

static int sock_type(const char *t)
{
	if (!t)
		return -1;
	if (!strcmp(t, "stream"))
		return SOCK_STREAM;
	if (!strcmp(t, "dgram"))
		return SOCK_DGRAM;
	if (!strcmp(t, "seqpacket"))
		return SOCK_SEQPACKET;
	return -1;
}

static int sock_family(const char *f)
{
	if (!f)
		return -1;
	if (!strcmp(f, "unix"))
		return AF_UNIX;
	if (!strcmp(f, "inet"))
		return AF_INET;
	if (!strcmp(f, "inet6"))
		return AF_INET6;
	return -1;
}

/* Whether the socket can be rebuilt; if not, *why says so. */
int rst_socket_restorable(const struct rst_fd *f, const char **why)
{
	char *fam = field(f, "family"), *type = field(f, "type"), *state = field(f, "state");
	char *peer = field(f, "peer");
	int ok = 0;

	*why = "only listening and unconnected sockets are restored";
	if (sock_family(fam) < 0 || sock_type(type) < 0)
		*why = "its family or type is not restored";
	else if (peer && *peer)
		*why = "it is connected to a peer the image does not hold";
	else if (state && !strcmp(state, "listen") && sock_type(type) != SOCK_DGRAM)
		ok = 1;
	else if (state && !strcmp(state, "unconnected") && sock_type(type) == SOCK_DGRAM)
		ok = 1;
	free(fam); free(type); free(state); free(peer);
	return ok;
}

static socklen_t inet_address(int family, const char *local, struct sockaddr_storage *ss)
{
	char host[128];
	const char *colon = strrchr(local, ':');
	int port;

	if (!colon || (size_t)(colon - local) >= sizeof host)
		return 0;
	memcpy(host, local, colon - local);
	host[colon - local] = 0;
	port = atoi(colon + 1);
	memset(ss, 0, sizeof *ss);
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? sizeof *a : 0;
	}
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	char *h = host;
	if (*h == '[') {
		h++;
		h[strcspn(h, "]")] = 0;
	}
	a6->sin6_family = AF_INET6;
	a6->sin6_port = htons(port);
	return inet_pton(AF_INET6, h, &a6->sin6_addr) == 1 ? sizeof *a6 : 0;
}

/* A unix name: a path (its stale socket file, left by the dead original, is removed first) or an
 * abstract name written "@name". */
static socklen_t unix_address(const char *local, struct sockaddr_storage *ss)
{
	struct sockaddr_un *u = (struct sockaddr_un *)ss;
	size_t len = strlen(local);
	struct stat st;

	memset(ss, 0, sizeof *ss);
	u->sun_family = AF_UNIX;
	if (len >= sizeof u->sun_path)
		return 0;
	memcpy(u->sun_path, local, len);
	if (local[0] == '@') {
		u->sun_path[0] = 0;
		return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	}
	if (lstat(local, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(local);
	return sizeof *u;
}

static int bind_local(int s, int family, const char *local, int pid, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1;

	if (!local || !*local)
		return 0; /* never bound */
	len = family == AF_UNIX ? unix_address(local, &ss) : inet_address(family, local, &ss);
	if (!len)
		return rst_fail(0, "process %d fd %d: cannot read the socket address \"%s\"", pid, fd, local);
	if (family != AF_UNIX)
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(s, (struct sockaddr *)&ss, len) < 0)
		return rst_fail(errno, "process %d fd %d: binding a socket to %s again", pid, fd, local);
	return 0;
}

static int make_socket(struct rst_image *img, struct rst_sock *k, const struct rst_fd *f, int pid)
{
	char *fam = field(f, "family"), *type = field(f, "type"), *state = field(f, "state");
	char *local = field(f, "local");
	int family = sock_family(fam), s = -1, rc = -1;

	s = socket(family, sock_type(type) | SOCK_CLOEXEC, family == AF_UNIX ? 0 : (int)mp_get_int(mp_get(f->fdinfo_parent, "socket"), "protocol", 0));
	if (s < 0) {
		rst_fail(errno, "process %d fd %d: socket(%s, %s)", pid, f->fd, fam, type);
		goto out;
	}
	if (bind_local(s, family, local, pid, f->fd))
		goto out;
	if (!strcmp(state, "listen") && listen(s, SOMAXCONN) < 0) {
		rst_fail(errno, "process %d fd %d: listen on %s", pid, f->fd, local ? local : "");
		goto out;
	}
	k->fd = fcntl(s, F_DUPFD_CLOEXEC, img->fd_base);
	if (k->fd < 0)
		rst_fail(errno, "moving a socket above fd %d", img->fd_base);
	else
		rc = 0;
out:
	if (s >= 0)
		close(s);
	free(fam); free(type); free(state); free(local);
	return rc;
}

int rst_socket_slot(struct rst_image *img, const struct rst_fd *f)
{
	struct rst_sock *n;

	for (int i = 0; i < img->nsockets; i++)
		if (img->sockets[i].inode == f->inode)
			return i;
	n = realloc(img->sockets, (img->nsockets + 1) * sizeof *n);
	if (!n)
		return rst_fail(ENOMEM, "allocating sockets");
	img->sockets = n;
	n[img->nsockets].inode = f->inode;
	n[img->nsockets].fd = -1;
	n[img->nsockets].first = f;
	return img->nsockets++;
}

int rst_prepare_sockets(struct rst_image *img)
{
	for (int i = 0; i < img->nsockets; i++) {
		struct rst_sock *k = &img->sockets[i];
		int pid = 0;
		for (int p = 0; p < img->nprocs && !pid; p++)
			for (int q = 0; q < img->procs[p].nfds; q++)
				if (&img->procs[p].fds[q] == k->first)
					pid = img->procs[p].pid;
		if (make_socket(img, k, k->first, pid))
			return -1;
	}
	return 0;
}

void rst_close_sockets(struct rst_image *img)
{
	for (int i = 0; i < img->nsockets; i++)
		if (img->sockets[i].fd >= 0) {
			close(img->sockets[i].fd);
			img->sockets[i].fd = -1;
		}
}
