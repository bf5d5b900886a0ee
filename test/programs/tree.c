/* tree OUTFILE: a parent and two forked children share a pipe that holds unread bytes
 * ("CRYO-PIPE-PENDING\n"). Everyone waits. On SIGUSR1 a child reads one line from the pipe and
 * sends "childN got <line>" to the parent over a second pipe; the parent appends it to OUTFILE. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

static int read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	while (n + 1 < size) {
		ssize_t r = read(fd, buf + n, 1);
		if (r <= 0)
			return -1;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = 0;
	return (int)n;
}

static void child(int id, int pending_rd, int reply_wr)
{
	char name[16];
	snprintf(name, sizeof name, "cryo-child-%d", id);
	prctl(PR_SET_NAME, name);
	char *marker = malloc(32);
	snprintf(marker, 32, "CRYO-TREE-CHILD-%d", id);
	for (;;) {
		while (!go)
			pause();
		go = 0;
		char line[128], msg[192];
		if (read_line(pending_rd, line, sizeof line) < 0)
			_exit(1);
		int n = snprintf(msg, sizeof msg, "child%d got %s", id, line);
		if (write(reply_wr, msg, n) != n)
			_exit(1);
	}
}

int main(int argc, char **argv)
{
	/* Descriptors inherited from whoever started us (a test runner's shell) are not ours:
	 * close them so that an image holds only what this program opened. */
	close_range(3, ~0U, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: tree OUTFILE\n");
		return 2;
	}
	int pending[2], reply[2];
	if (pipe(pending) || pipe(reply))
		return 1;
	const char text[] = "CRYO-PIPE-PENDING\nCRYO-PIPE-SECOND\n";
	if (write(pending[1], text, sizeof text - 1) != (ssize_t)(sizeof text - 1))
		return 1;
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &sa, NULL);
	prctl(PR_SET_NAME, "cryo-tree-par");

	pid_t kids[2];
	for (int i = 0; i < 2; i++) {
		kids[i] = fork();
		if (kids[i] == 0)
			child(i + 1, pending[0], reply[1]);
	}
	char *marker = malloc(32);
	strcpy(marker, "CRYO-TREE-PARENT");
	printf("READY pid=%d child1=%d child2=%d pending_rd=%d pending_wr=%d reply_rd=%d\n", getpid(),
	       kids[0], kids[1], pending[0], pending[1], reply[0]);
	fflush(stdout);

	int out = open(argv[1], O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (out < 0)
		return 1;
	char line[256];
	while (read_line(reply[0], line, sizeof line) > 0)
		if (write(out, line, strlen(line)) < 0)
			return 1;
	return 0;
}
