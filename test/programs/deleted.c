/* deleted OUTFILE: writes a known text to a file, unlinks it, keeps it open at offset 5.
 * On SIGUSR1 it reads the rest of the deleted file and writes it to OUTFILE. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

int main(int argc, char **argv)
{
	/* Descriptors inherited from whoever started us (a test runner's shell) are not ours:
	 * close them so that an image holds only what this program opened. */
	close_range(3, ~0U, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: deleted OUTFILE\n");
		return 2;
	}
	char path[4096];
	snprintf(path, sizeof path, "%s.hidden", argv[1]);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return 1;
	const char text[] = "HEAD:CRYO-DELETED-CONTENT the file is gone but still open\n";
	if (write(fd, text, sizeof text - 1) != (ssize_t)(sizeof text - 1))
		return 1;
	unlink(path);
	lseek(fd, 5, SEEK_SET);
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &sa, NULL);
	printf("READY pid=%d fd=%d path=%s\n", getpid(), fd, path);
	fflush(stdout);
	while (!go)
		pause();
	char buf[256];
	ssize_t n = read(fd, buf, sizeof buf);
	int out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (n < 0 || out < 0 || write(out, buf, n) != n)
		return 1;
	return 0;
}
