/* counter OUTFILE [INTERVAL_MS]: counts up forever, appending "count N\n" to OUTFILE (kept open),
 * with a marker string on its heap. Used to prove a restored process continues where it stopped. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile unsigned long counter;

int main(int argc, char **argv)
{
	/* Descriptors inherited from whoever started us (a test runner's shell) are not ours:
	 * close them so that an image holds only what this program opened. */
	close_range(3, ~0U, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: counter OUTFILE [INTERVAL_MS]\n");
		return 2;
	}
	long interval_ms = argc > 2 ? atol(argv[2]) : 20;
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	char *marker = malloc(64);
	snprintf(marker, 64, "CRYO-COUNTER-MARKER-%d", getpid());
	printf("READY pid=%d fd=%d marker=%p counter=%p\n", getpid(), fd, (void *)marker, (void *)&counter);
	fflush(stdout);

	struct timespec pause = { interval_ms / 1000, (interval_ms % 1000) * 1000000L };
	for (;;) {
		char line[64];
		int n = snprintf(line, sizeof line, "count %lu\n", ++counter);
		if (write(fd, line, n) != n)
			return 1;
		nanosleep(&pause, NULL);
	}
}
