/* subreaper [--keep-fd N] PROGRAM [ARGS...]: runs PROGRAM as its child while being a child subreaper, so that
 * whatever PROGRAM forks is reaped here when it is orphaned (PID 1 of the test machine reaps nothing).
 * Exits once no child is left, with PROGRAM's exit status (128+signal if it was killed). Used by the
 * tests to run process trees that a dump with --kill kills all at once. PROGRAM gets only 0-2 (and N): a
 * descriptor leaked into the test runner (say, a pipe of whatever started it) would otherwise become part
 * of every image, and a pipe to a process outside the image cannot be restored. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int keep = -1;
	if (argc > 3 && !strcmp(argv[1], "--keep-fd")) {
		keep = atoi(argv[2]);
		argv += 2;
		argc -= 2;
	}
	if (argc < 2 || keep == 0 || keep == 1 || keep == 2) {
		fprintf(stderr, "usage: subreaper [--keep-fd N] PROGRAM [ARGS...]\n");
		return 2;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		perror("PR_SET_CHILD_SUBREAPER");
		return 1;
	}
	pid_t child = fork();
	if (child < 0)
		return 1;
	if (child == 0) {
		if (keep > 3)
			syscall(SYS_close_range, 3, keep - 1, 0);
		if (keep >= 3)
			fcntl(keep, F_SETFD, 0); /* Node hands extra stdio over close-on-exec */
		syscall(SYS_close_range, keep >= 3 ? keep + 1 : 3, ~0u, 0);
		execv(argv[1], argv + 1);
		perror(argv[1]);
		_exit(127);
	}
	int status = 0, st;
	pid_t r;
	while ((r = wait(&st)) > 0 || (r < 0 && errno == EINTR))
		if (r == child)
			status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return status;
}
