/* spawner OUTFILE: never stops changing. Its main thread creates and joins a short-lived thread and
 * forks a short-lived child (which it reaps) over and over, and a second thread sends the process
 * SIGUSR2 (handled, counted) all the time: a dump has to freeze a tree whose threads and children
 * come and go while it looks. The work goes on after a dump; SIGUSR1 makes it write
 * "spawner ok threads=T children=C signals=S" to OUTFILE (T, C and S are counts, all > 0). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t go;
static volatile long signals;

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

static void on_usr2(int sig)
{
	(void)sig;
	signals++;
}

static void *quick(void *arg)
{
	return arg;
}

static void *pester(void *arg)
{
	(void)arg;
	for (;;) {
		kill(getpid(), SIGUSR2);
		usleep(200);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long threads = 0, children = 0;
	pthread_t t;

	if (argc < 2) {
		fprintf(stderr, "usage: spawner OUTFILE\n");
		return 2;
	}
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	if (pthread_create(&t, NULL, pester, NULL))
		return 1;
	printf("READY pid=%d\n", getpid());
	fflush(stdout);
	while (!go) {
		if (pthread_create(&t, NULL, quick, NULL) == 0 && pthread_join(t, NULL) == 0)
			threads++;
		pid_t child = fork();
		if (child == 0)
			_exit(0);
		if (child > 0 && waitpid(child, NULL, 0) == child)
			children++;
	}
	FILE *out = fopen(argv[1], "w");
	if (!out)
		return 1;
	fprintf(out, "spawner ok threads=%ld children=%ld signals=%ld\n", threads, children, (long)signals);
	fclose(out);
	return 0;
}
