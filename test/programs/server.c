/* server: a tiny TCP server on 127.0.0.1 (an ephemeral port) that answers every connection with
 * "hello N\n", N counting connections since it started, then waits for the client to close first (so
 * that the TIME_WAIT stays on the client's side and the port can be bound again at once after a dump
 * with --kill). Used to show that a listening socket comes back, bound to its port, with the state. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 16) ||
	    getsockname(s, (struct sockaddr *)&a, &len))
		return 1;
	printf("READY pid=%d port=%d fd=%d\n", getpid(), ntohs(a.sin_port), s);
	fflush(stdout);
	for (unsigned long n = 1;; n++) {
		int c = accept(s, NULL, NULL);
		if (c < 0)
			return 1;
		char msg[64];
		int m = snprintf(msg, sizeof msg, "hello %lu\n", n);
		if (write(c, msg, m) != m)
			return 1;
		while (read(c, msg, sizeof msg) > 0)
			;
		close(c);
	}
}
