/* Writes PAGEDATA sections from a second thread, so that writing one batch of pages overlaps with
 * reading (and checksumming) the next: on a 1 GiB heap the checksum and the write each cost about
 * as much as everything else together. The caller alternates between two buffers; a buffer handed
 * over must stay untouched until the next pw_submit() or pw_finish() returns. */
#ifndef CRYO_PAGEWRITER_H
#define CRYO_PAGEWRITER_H

#include <stddef.h>
#include <stdint.h>

#include "image_write.h"

struct page_writer;

/* The writer thread owns w until pw_finish(); owner is the PID of the pages' process. */
int pw_start(struct page_writer **pw, struct image_writer *w, uint32_t owner);
/* Checksums buf's 1 MiB sections here, waits for the previous batch to be written, then hands buf
 * over. -1 if the writer has failed (its message is recorded). */
int pw_submit(struct page_writer *pw, const unsigned char *buf, size_t pages, uint64_t first_index);
/* Waits for the last batch, stops the thread, frees pw. -1 if any write failed. */
int pw_finish(struct page_writer *pw);

#endif
