/* bigheap MIB [OUTFILE]: fills MIB MiB of heap with a pattern of realistic memory (structs with pointers,
 * text, counters, some zero pages), prints its checksum, then waits. On SIGUSR1 it recomputes the
 * checksum and writes "checksum X ok|BAD" to OUTFILE. */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

struct record {
	struct record *next;
	uint64_t id;
	double value;
	char name[40];
};

static uint64_t checksum(const uint64_t *p, size_t words)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < words; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

int main(int argc, char **argv)
{
	/* Descriptors inherited from whoever started us (a test runner's shell) are not ours:
	 * close them so that an image holds only what this program opened. */
	close_range(3, ~0U, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: bigheap MIB [OUTFILE]\n");
		return 2;
	}
	size_t size = (size_t)atol(argv[1]) << 20;
	unsigned char *heap = malloc(size);
	if (!heap)
		return 1;
	uint64_t seed = 42;
	for (size_t off = 0; off < size; off += 4096) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		unsigned char *page = heap + off;
		if ((seed >> 60) == 0) { /* about one page in 16 stays zero */
			memset(page, 0, 4096);
			continue;
		}
		struct record *r = (struct record *)page;
		for (size_t i = 0; i < 4096 / sizeof *r; i++) {
			r[i].next = i + 1 < 4096 / sizeof *r ? &r[i + 1] : NULL;
			r[i].id = off / 4096 * 64 + i;
			r[i].value = (double)(seed >> 40) / (i + 1);
			snprintf(r[i].name, sizeof r[i].name, "record-%zu-%s", r[i].id,
				 (seed >> 33) & 1 ? "alpha" : "omega");
		}
	}
	uint64_t sum = checksum((const uint64_t *)heap, size / 8);
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &sa, NULL);
	printf("READY pid=%d heap=%p size=%zu checksum=%016llx\n", getpid(), (void *)heap, size,
	       (unsigned long long)sum);
	fflush(stdout);
	for (;;) {
		while (!go)
			pause();
		go = 0;
		uint64_t now = checksum((const uint64_t *)heap, size / 8);
		if (argc > 2) {
			FILE *out = fopen(argv[2], "w");
			if (out) {
				fprintf(out, "checksum %016llx %s\n", (unsigned long long)now, now == sum ? "ok" : "BAD");
				fclose(out);
			}
		}
	}
}
