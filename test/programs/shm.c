/* shm OUTFILE: a parent and a forked child share two mappings, anonymous shared memory and a memfd
 * (whose descriptor both keep open). On SIGUSR1 the child increments a counter in each; on SIGUSR2 the
 * parent writes "shm N memfd M" to OUTFILE, reading the counters through the shared mappings. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

static volatile sig_atomic_t usr1, usr2;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		usr1 = 1;
	else
		usr2 = 1;
}

struct shared {
	char marker[16];
	volatile long count;
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: shm OUTFILE\n");
		return 2;
	}
	struct shared *anon = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int mfd = memfd_create("cryo-memfd", 0);
	if (anon == MAP_FAILED || mfd < 0 || ftruncate(mfd, 65536) < 0)
		return 1;
	struct shared *mem = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (mem == MAP_FAILED)
		return 1;
	strcpy(anon->marker, "CRYO-SHM-ANON");
	strcpy(mem->marker, "CRYO-SHM-MEMFD");
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	pid_t child = fork();
	if (child == 0) {
		prctl(PR_SET_NAME, "cryo-shm-child");
		for (;;) {
			while (!usr1)
				pause();
			usr1 = 0;
			anon->count++;
			mem->count++;
		}
	}
	printf("READY pid=%d child=%d memfd=%d\n", getpid(), child, mfd);
	fflush(stdout);
	for (;;) {
		while (!usr2)
			pause();
		usr2 = 0;
		FILE *out = fopen(argv[1], "w");
		if (out) {
			fprintf(out, "shm %ld memfd %ld\n", anon->count, mem->count);
			fclose(out);
		}
	}
}
