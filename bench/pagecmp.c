/* pagecmp A B: the C reference for `cryo-img diff` speed — read both files 1 MiB at a time and
 * memcmp() them page by page (4096 bytes), counting the pages that differ. No format knowledge: a
 * lower bound for comparing the same bytes. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (1 << 20)

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: pagecmp A B\n");
		return 2;
	}
	int fa = open(argv[1], O_RDONLY), fb = open(argv[2], O_RDONLY);
	if (fa < 0 || fb < 0) {
		perror("open");
		return 2;
	}
	static char a[CHUNK], b[CHUNK];
	unsigned long long differ = 0, pages = 0;
	for (;;) {
		ssize_t na = read(fa, a, CHUNK), nb = read(fb, b, CHUNK);
		if (na < 0 || nb < 0) {
			perror("read");
			return 2;
		}
		ssize_t n = na < nb ? na : nb;
		for (ssize_t off = 0; off < n; off += 4096) {
			size_t len = n - off < 4096 ? (size_t)(n - off) : 4096;
			pages++;
			if (memcmp(a + off, b + off, len))
				differ++;
		}
		if (na < CHUNK || nb < CHUNK)
			break;
	}
	printf("%llu of %llu pages differ\n", differ, pages);
	return 0;
}
