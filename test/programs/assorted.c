/* assorted OUTFILE: one process holding one of most kinds of state a dumper records, so a test can
 * check each in the image: signal handlers (flags, masks), an alternate signal stack, signals pending
 * for the process and for the thread (blocked), a memfd mapping and descriptor, shared anonymous
 * memory, a PROT_NONE region holding data, never-written pages that read as zeros, a private mapping
 * of a deleted file, a FIFO with unread bytes, an eventfd, a timerfd, a socketpair, a listening
 * abstract unix socket, umask and an rlimit. Everything it sets up is re-checked on SIGUSR1, which
 * writes "assorted ok" (or "assorted BAD <what>") to OUTFILE: a dump must not have changed any of it. */
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#define PAGE 4096

static volatile sig_atomic_t go;
static const char *outfile;
static char *memfd_map, *shmem, *protnone, *zeros, *delmap, *altstack;
static int fifo_fd;

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

static void on_term(int sig, siginfo_t *si, void *ctx)
{
	(void)sig, (void)si, (void)ctx;
	_exit(3);
}

static void fail(const char *what)
{
	perror(what);
	exit(1);
}

static char *map(size_t len, int prot, int flags, int fd)
{
	char *p = mmap(NULL, len, prot, flags, fd, 0);
	if (p == MAP_FAILED)
		fail("mmap");
	return p;
}

static void setup_signals(void)
{
	struct sigaction usr1 = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	sigemptyset(&usr1.sa_mask);
	sigaddset(&usr1.sa_mask, SIGUSR2);
	struct sigaction term = { .sa_sigaction = on_term, .sa_flags = SA_SIGINFO | SA_ONSTACK };
	sigemptyset(&term.sa_mask);
	if (sigaction(SIGUSR1, &usr1, NULL) || sigaction(SIGTERM, &term, NULL) || signal(SIGUSR2, SIG_IGN) == SIG_ERR)
		fail("sigaction");
	altstack = malloc(65536);
	stack_t ss = { .ss_sp = altstack, .ss_size = 65536 };
	if (sigaltstack(&ss, NULL))
		fail("sigaltstack");
	/* Blocked and queued: one for the process, one for this thread only. */
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGRTMIN + 1);
	sigaddset(&block, SIGRTMIN + 2);
	sigprocmask(SIG_BLOCK, &block, NULL);
	union sigval v = { .sival_int = 0x1234 };
	if (sigqueue(getpid(), SIGRTMIN + 1, v) || syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), SIGRTMIN + 2))
		fail("queue signals");
}

static void setup_memory(const char *dir)
{
	int mfd = memfd_create("cryo-memfd", 0);
	if (mfd < 0 || ftruncate(mfd, 2 * PAGE))
		fail("memfd");
	memfd_map = map(2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd);
	strcpy(memfd_map, "CRYO-MEMFD-CONTENT");
	/* mfd stays open: the descriptor and the mapping are both recorded. */
	shmem = map(3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1);
	strcpy(shmem, "CRYO-SHMEM");
	protnone = map(PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	strcpy(protnone, "CRYO-PROTNONE");
	if (mprotect(protnone, PAGE, PROT_NONE))
		fail("mprotect");
	zeros = map(4 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	for (int i = 0; i < 4; i++)
		(void)((volatile char *)zeros)[i * PAGE]; /* read faults map the shared zero page */

	char path[4200];
	snprintf(path, sizeof path, "%s/assorted-mapped.tmp", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "CRYO-DELETED-MAP", 16) != 16 || ftruncate(fd, PAGE))
		fail("mapped file");
	delmap = map(PAGE, PROT_READ, MAP_PRIVATE, fd);
	close(fd);
	unlink(path);
}

static void setup_files(const char *dir, char *fifo_path, size_t size, char *abstract, size_t asize)
{
	snprintf(fifo_path, size, "%s/assorted.fifo", dir);
	unlink(fifo_path);
	if (mkfifo(fifo_path, 0600))
		fail("mkfifo");
	fifo_fd = open(fifo_path, O_RDWR | O_NONBLOCK);
	if (fifo_fd < 0 || write(fifo_fd, "CRYO-FIFO-DATA\n", 15) != 15)
		fail("fifo");
	if (eventfd(7, EFD_CLOEXEC) < 0)
		fail("eventfd");
	int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
	struct itimerspec its = { .it_interval = { 10, 0 }, .it_value = { 10, 0 } };
	if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL))
		fail("timerfd");
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		fail("socketpair");
	int ls = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	snprintf(abstract, asize, "cryo-assorted-%d", getpid());
	memcpy(addr.sun_path + 1, abstract, strlen(abstract));
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(abstract));
	if (ls < 0 || bind(ls, (struct sockaddr *)&addr, len) || listen(ls, 4))
		fail("unix listen");
}

/* What SIGUSR1 re-checks: the dump must have left all of it as it was. */
static const char *check(void)
{
	struct sigaction sa;
	sigset_t pending;
	stack_t ss;
	char buf[32];

	sigaction(SIGUSR1, NULL, &sa);
	if (sa.sa_handler != on_usr1 || !(sa.sa_flags & SA_RESTART) || !sigismember(&sa.sa_mask, SIGUSR2))
		return "SIGUSR1 disposition";
	sigaction(SIGUSR2, NULL, &sa);
	if (sa.sa_handler != SIG_IGN)
		return "SIGUSR2 disposition";
	sigpending(&pending);
	if (!sigismember(&pending, SIGRTMIN + 1) || !sigismember(&pending, SIGRTMIN + 2))
		return "pending signals";
	if (sigaltstack(NULL, &ss) || ss.ss_sp != altstack || ss.ss_size != 65536)
		return "sigaltstack";
	if (strcmp(memfd_map, "CRYO-MEMFD-CONTENT") || strcmp(shmem, "CRYO-SHMEM") || memcmp(delmap, "CRYO-DELETED-MAP", 16))
		return "memory";
	if (mprotect(protnone, PAGE, PROT_READ) || strcmp(protnone, "CRYO-PROTNONE") || mprotect(protnone, PAGE, PROT_NONE))
		return "PROT_NONE page";
	for (int i = 0; i < 4 * PAGE; i++)
		if (zeros[i])
			return "zero pages";
	if (read(fifo_fd, buf, sizeof buf) != 15 || memcmp(buf, "CRYO-FIFO-DATA\n", 15))
		return "fifo bytes";
	return NULL;
}

int main(int argc, char **argv)
{
	char fifo_path[4200], abstract[64], dir[4000];

	if (argc < 2) {
		fprintf(stderr, "usage: assorted OUTFILE\n");
		return 2;
	}
	outfile = argv[1];
	snprintf(dir, sizeof dir, "%s", outfile);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = 0; /* the directory of OUTFILE holds the FIFO and the mapped file */
	else
		strcpy(dir, ".");
	umask(027);
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max < 1000 ? rl.rlim_max : 1000;
	setrlimit(RLIMIT_NOFILE, &rl);
	setup_signals();
	setup_memory(dir);
	setup_files(dir, fifo_path, sizeof fifo_path, abstract, sizeof abstract);
	printf("READY pid=%d memfd=%p shmem=%p protnone=%p zeros=%p delmap=%p altstack=%p fifo=%s fifo_fd=%d "
	       "abstract=%s\n",
	       getpid(), (void *)memfd_map, (void *)shmem, (void *)protnone, (void *)zeros, (void *)delmap,
	       (void *)altstack, fifo_path, fifo_fd, abstract);
	fflush(stdout);
	while (!go)
		pause();
	const char *bad = check();
	FILE *out = fopen(outfile, "w");
	if (!out)
		return 1;
	fprintf(out, bad ? "assorted BAD %s\n" : "assorted ok\n", bad);
	fclose(out);
	return bad ? 1 : 0;
}
