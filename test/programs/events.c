/* events OUTFILE: an event loop on epoll watching an eventfd (count 5 pending), a signalfd for SIGUSR1
 * (blocked) and a periodic timerfd (50 ms). Each SIGUSR1 read from the signalfd appends
 * "signal N eventfd C ticks T" to OUTFILE, where C is the eventfd count it read and T > 0 says the
 * timer keeps firing. Exits 0 on the third SIGUSR1. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: events OUTFILE\n");
		return 2;
	}
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int efd = eventfd(5, EFD_NONBLOCK);
	int sfd = signalfd(-1, &mask, SFD_NONBLOCK);
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	struct itimerspec its = { { 0, 50000000 }, { 0, 50000000 } };
	int ep = epoll_create1(0);
	if (efd < 0 || sfd < 0 || tfd < 0 || ep < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0)
		return 1;
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 1 };
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	ev.data.u32 = 2;
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
	printf("READY pid=%d eventfd=%d signalfd=%d timerfd=%d epoll=%d\n", getpid(), efd, sfd, tfd, ep);
	fflush(stdout);
	uint64_t ticks = 0;
	for (int signals = 0; signals < 3;) {
		struct epoll_event got[4];
		int n = epoll_wait(ep, got, 4, -1);
		for (int i = 0; i < n; i++) {
			if (got[i].data.u32 == 2) {
				uint64_t t;
				if (read(tfd, &t, sizeof t) == sizeof t)
					ticks += t;
				continue;
			}
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof si) != sizeof si)
				continue;
			uint64_t count = 0;
			if (read(efd, &count, sizeof count) != sizeof count)
				count = 0;
			FILE *out = fopen(argv[1], "a");
			if (out) {
				fprintf(out, "signal %d eventfd %llu ticks %s\n", ++signals, (unsigned long long)count,
					ticks ? "yes" : "no");
				fclose(out);
			}
			ticks = 0;
			uint64_t one = 1;
			if (write(efd, &one, sizeof one) < 0)
				return 1;
		}
	}
	return 0;
}
