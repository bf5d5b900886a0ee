/* A process's file descriptors (FORMAT.md §6.5) and the blobs they need: the content of deleted
 * files and the bytes waiting in pipes. Blob contents are written later (after every PROCESS
 * section, §4), so a blob source is remembered here: pipe bytes (at most a pipe's capacity) are kept
 * in memory, deleted files as an open descriptor read in 1 MiB pieces at write time. */
#ifndef CRYO_FILES_H
#define CRYO_FILES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "image_write.h"
#include "msgpack_write.h"

struct blob {
	uint64_t id;
	uint32_t owner;       /* pid, or 0 for pipes shared by several processes */
	dev_t dev;            /* identity of the object, so every fd of it names the same blob */
	ino_t ino;
	int is_pipe;
	unsigned char *data;  /* pipe bytes */
	size_t len;
	int fd;               /* deleted file: a descriptor of our own to read it through, else -1 */
};

struct blobs {
	struct blob *v;
	size_t n;
	uint64_t next_id;
};

void blobs_init(struct blobs *b);
/* Writes every blob's BLOB sections and closes the descriptors. */
int blobs_write(struct image_writer *w, struct blobs *b);
void blobs_free(struct blobs *b);

/* Writes the "fds" array of a frozen process, registering blobs. */
int files_encode(struct mpw *w, pid_t pid, struct blobs *b);

#endif
