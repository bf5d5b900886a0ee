/* sleeper OUTFILE [SECONDS]: two threads blocked in the kernel. One sleeps SECONDS (default 3) in
 * nanosleep, going on with the remaining time when interrupted, then appends "slept" to OUTFILE; the
 * other blocks in read() on a pipe and appends "read <line>" when bytes arrive. SIGUSR1 makes the main
 * thread write "CRYO-WAKE" into the pipe. The main thread joins both, appends "done" and exits 0.
 * Signal state to carry over: SIGUSR2 is blocked everywhere and pending twice, once for the process
 * and once for the sleeping thread; the reader thread runs with a sigaltstack. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int out_fd, pipe_fd[2];
static long seconds = 3;
static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

static void say(const char *text)
{
	if (write(out_fd, text, strlen(text)) < 0)
		exit(1);
}

static void *sleeper(void *arg)
{
	struct timespec req = { seconds, 0 }, rem;
	(void)arg;
	while (nanosleep(&req, &rem) < 0 && errno == EINTR)
		req = rem;
	say("slept\n");
	return NULL;
}

static void *reader(void *arg)
{
	char buf[64], line[96];
	ssize_t n;
	stack_t ss = { .ss_sp = malloc(65536), .ss_size = 65536 };
	(void)arg;
	sigaltstack(&ss, NULL);
	do
		n = read(pipe_fd[0], buf, sizeof buf - 1);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	snprintf(line, sizeof line, "read %s\n", buf);
	say(line);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: sleeper OUTFILE [SECONDS]\n");
		return 2;
	}
	if (argc > 2)
		seconds = atol(argv[2]);
	out_fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0644);
	if (out_fd < 0 || pipe(pipe_fd))
		return 1;
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &sa, NULL);
	sigset_t usr2;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr2, NULL);
	pthread_t a, b;
	pthread_create(&a, NULL, sleeper, NULL);
	pthread_create(&b, NULL, reader, NULL);
	kill(getpid(), SIGUSR2);
	pthread_kill(a, SIGUSR2);
	printf("READY pid=%d seconds=%ld\n", getpid(), seconds);
	fflush(stdout);
	while (!go)
		pause();
	if (write(pipe_fd[1], "CRYO-WAKE\n", 10) != 10)
		return 1;
	pthread_join(b, NULL);
	pthread_join(a, NULL);
	say("done\n");
	return 0;
}
