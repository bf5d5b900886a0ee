/* Descriptors on anonymous inodes that the kernel can make again from what fdinfo shows (FORMAT.md
 * §6.5 `fdinfo`): eventfd (its count), signalfd (its mask), timerfd (clock, time left, interval,
 * ticks not yet read) and epoll (its watches, re-added once every other descriptor of the process is
 * in place). They are created by the restored process itself, in restore_files.c's second phase. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "restore.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

static const char *info(const struct rst_fd *f, const char *key)
{
	static char buf[4096];
	const unsigned char *p;
	size_t len;

	if (mp_bytes(mp_get(f->fdinfo, key), &p, &len) || len >= sizeof buf)
		return NULL;
	memcpy(buf, p, len);
	buf[len] = 0;
	return buf;
}

int rst_anonfd_action(const struct rst_fd *f)
{
	if (!strcmp(f->type, "eventfd") && info(f, "eventfd-count"))
		return FA_EVENTFD;
	if (!strcmp(f->type, "signalfd") && info(f, "sigmask"))
		return FA_SIGNALFD;
	if (!strcmp(f->type, "timerfd") && info(f, "clockid") && info(f, "it_value"))
		return FA_TIMERFD;
	if (!strcmp(f->type, "epoll"))
		return FA_EPOLL;
	return -1;
}

static int fail(char *err, size_t len, int e, const char *what, int fd)
{
	snprintf(err, len, "%s for fd %d: %s", what, fd, rst_errname(e));
	return -1;
}

static int make_eventfd(const struct rst_fd *f, char *err, size_t len)
{
	const char *sem_s = info(f, "eventfd-semaphore"); /* info() reuses one buffer: read it at once */
	int sem = sem_s && atoi(sem_s);
	uint64_t count = strtoull(info(f, "eventfd-count"), NULL, 16); /* printed in hex */
	int fd = eventfd(0, sem ? EFD_SEMAPHORE : 0);

	if (fd < 0)
		return fail(err, len, errno, "eventfd", f->fd);
	if (count && write(fd, &count, sizeof count) != sizeof count) {
		close(fd);
		return fail(err, len, errno, "setting the eventfd count", f->fd);
	}
	return fd;
}

static int make_signalfd(const struct rst_fd *f, char *err, size_t len)
{
	uint64_t mask = strtoull(info(f, "sigmask"), NULL, 16);
	int fd = (int)syscall(SYS_signalfd4, -1, &mask, sizeof mask, 0);

	return fd < 0 ? fail(err, len, errno, "signalfd", f->fd) : fd;
}

static int parse_pair(const char *s, struct timespec *ts)
{
	long long sec, nsec;

	if (!s || sscanf(s, " (%lld, %lld)", &sec, &nsec) != 2)
		return -1;
	ts->tv_sec = sec;
	ts->tv_nsec = nsec;
	return 0;
}

/* fdinfo shows the time left (relative, whatever flags armed it) and the ticks not yet read */
static int make_timerfd(const struct rst_fd *f, char *err, size_t len)
{
	struct itimerspec its;
	const char *ticks_s = info(f, "ticks");
	uint64_t ticks = ticks_s ? strtoull(ticks_s, NULL, 10) : 0;
	int clock = atoi(info(f, "clockid")), bad;
	int fd = timerfd_create(clock, 0);

	memset(&its, 0, sizeof its);
	if (fd < 0)
		return fail(err, len, errno, "timerfd_create", f->fd);
	bad = parse_pair(info(f, "it_value"), &its.it_value);
	bad = bad || parse_pair(info(f, "it_interval"), &its.it_interval);
	if (bad) {
		close(fd);
		snprintf(err, len, "fd %d: unreadable timerfd settings", f->fd);
		return -1;
	}
	if (!its.it_value.tv_sec && !its.it_value.tv_nsec && (its.it_interval.tv_sec || its.it_interval.tv_nsec))
		its.it_value.tv_nsec = 1; /* due right now */
	if (timerfd_settime(fd, 0, &its, NULL) < 0 || (ticks && ioctl(fd, TFD_IOC_SET_TICKS, &ticks) < 0)) {
		int e = errno;
		close(fd);
		return fail(err, len, e, "arming the timerfd", f->fd);
	}
	return fd;
}

int rst_anonfd_open(const struct rst_fd *f, char *err, size_t len)
{
	switch (f->action) {
	case FA_EVENTFD:
		return make_eventfd(f, err, len);
	case FA_SIGNALFD:
		return make_signalfd(f, err, len);
	case FA_TIMERFD:
		return make_timerfd(f, err, len);
	case FA_EPOLL: {
		int fd = epoll_create1(0);
		return fd < 0 ? fail(err, len, errno, "epoll_create1", f->fd) : fd;
	}
	}
	snprintf(err, len, "fd %d: not an anonymous-inode descriptor", f->fd);
	return -1;
}

/* Watches: one "tfd" line each, "N events: HEX data: HEX ...", joined with newlines. */
int rst_epoll_watches(const struct rst_fd *f, char *err, size_t len)
{
	const char *all = info(f, "tfd");
	char *copy, *line, *save = NULL;
	int rc = 0;

	if (!all)
		return 0;
	copy = strdup(all);
	for (line = strtok_r(copy, "\n", &save); line && !rc; line = strtok_r(NULL, "\n", &save)) {
		int target;
		unsigned events;
		unsigned long long data;
		struct epoll_event ev;
		if (sscanf(line, "%d events: %x data: %llx", &target, &events, &data) != 3)
			continue;
		ev.events = events;
		ev.data.u64 = data;
		if (epoll_ctl(f->fd, EPOLL_CTL_ADD, target, &ev) < 0) {
			snprintf(err, len, "epoll fd %d: watching fd %d again: %s", f->fd, target, rst_errname(errno));
			rc = -1;
		}
	}
	free(copy);
	return rc;
}
