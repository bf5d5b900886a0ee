/* A process's memory: its VMAs (/proc/PID/smaps), which pages the image stores (/proc/PID/pagemap,
 * following FORMAT.md §5.3), the PAGEMAP payload, and the page contents streamed into PAGEDATA
 * sections in bounded batches of 8 MiB, two buffers alternating with the page writer thread
 * (pagewriter.c): the whole memory of a process is never held. */
#ifndef CRYO_MEMORY_H
#define CRYO_MEMORY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "image_write.h"
#include "msgpack_write.h"

struct vma {
	uint64_t start, end, offset, inode;
	unsigned dev_major, dev_minor;
	int prot;            /* bit 0 read, 1 write, 2 exec */
	int shared;
	char *name;          /* maps path column as printed, "" for plain anonymous memory */
	char *path;          /* backing file without " (deleted)", NULL if not a file mapping */
	const char *kind;    /* FORMAT.md §6.4 */
	char *vmflags;       /* the smaps VmFlags line, space separated */
};

struct page_run {
	uint64_t vaddr;
	uint64_t store_index;  /* DATA: first store page; ZERO: 0 */
	uint32_t count;
	uint16_t kind;         /* CRYO_PAGE_DATA or CRYO_PAGE_ZERO */
};

struct memory {
	pid_t pid;
	struct vma *vmas;
	size_t nvmas;
	struct page_run *runs;   /* ascending vaddr, non-overlapping */
	size_t nruns, runs_cap;
	uint64_t store_pages;    /* N: the page store holds indices 0 .. N-1 */
	uint64_t zero_pages;
};

/* Reads smaps and pagemap of a frozen process and decides every stored page. */
int memory_scan(pid_t pid, struct memory *m);
void memory_free(struct memory *m);
/* The "vmas" array of FORMAT.md §6.4. */
void memory_encode_vmas(struct mpw *w, const struct memory *m);
/* PAGEMAP payload (§5.1), malloc'd; *len 0 (and *buf NULL) when nothing is stored. */
int memory_pagemap_payload(const struct memory *m, unsigned char **buf, size_t *len);
/* Read the stored pages from the frozen process and write its PAGEDATA sections (§5.2). */
int memory_write_pages(struct image_writer *w, const struct memory *m);

#endif
