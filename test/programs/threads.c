/* threads OUTFILE [WORKERS] [ROUNDS]: WORKERS threads each do ROUNDS rounds of (work, 10 ms sleep),
 * then the main thread joins them all and writes "joined W total T" to OUTFILE and exits 0.
 * A restored copy must keep every thread running and still be able to join them. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 16

static long rounds = 300;
static volatile long progress[MAX_WORKERS];
static volatile pid_t worker_tid[MAX_WORKERS];

static void *worker(void *arg)
{
	long id = (long)arg;
	char name[16];
	snprintf(name, sizeof name, "cryo-worker-%ld", id);
	prctl(PR_SET_NAME, name);
	worker_tid[id] = (pid_t)syscall(SYS_gettid);
	char *marker = malloc(32);
	snprintf(marker, 32, "CRYO-THREAD-%ld", id);
	struct timespec ten_ms = { 0, 10 * 1000000L };
	for (long r = 0; r < rounds; r++) {
		progress[id] = r + 1;
		nanosleep(&ten_ms, NULL);
	}
	return marker;
}

int main(int argc, char **argv)
{
	/* Descriptors inherited from whoever started us (a test runner's shell) are not ours:
	 * close them so that an image holds only what this program opened. */
	close_range(3, ~0U, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: threads OUTFILE [WORKERS] [ROUNDS]\n");
		return 2;
	}
	int workers = argc > 2 ? atoi(argv[2]) : 3;
	if (workers < 1 || workers > MAX_WORKERS)
		return 2;
	if (argc > 3)
		rounds = atol(argv[3]);
	pthread_t th[MAX_WORKERS];
	for (long i = 0; i < workers; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	for (int i = 0; i < workers; i++)
		while (!worker_tid[i])
			usleep(1000);
	printf("READY pid=%d", getpid());
	for (int i = 0; i < workers; i++)
		printf(" tid%d=%d", i, worker_tid[i]);
	printf("\n");
	fflush(stdout);

	long total = 0;
	int joined = 0;
	for (int i = 0; i < workers; i++) {
		void *ret;
		if (pthread_join(th[i], &ret) == 0 && ret && !strncmp(ret, "CRYO-THREAD-", 12)) {
			joined++;
			total += progress[i];
		}
	}
	FILE *out = fopen(argv[1], "w");
	if (!out)
		return 1;
	fprintf(out, "joined %d total %ld\n", joined, total);
	fclose(out);
	return joined == workers ? 0 : 1;
}
