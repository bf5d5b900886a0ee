/* Sequential reader of a .cryo image (docs/FORMAT.md): header, then section after section, then the
 * INDEX and the footer. It never seeks, so it reads from a pipe as well as from a file, and it checks
 * every CRC as the bytes go by. Errors name the byte offset and what was expected (FORMAT.md §10). */
#ifndef CRYO_IMAGE_READ_H
#define CRYO_IMAGE_READ_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"

struct img_reader {
	int fd;
	uint64_t offset;          /* bytes consumed */
	uint32_t sections;        /* sections read so far, INDEX excluded */
	uint64_t *seen;           /* per section: offset, header_crc (2 words), to check the INDEX */
	size_t seen_cap;
	int finished;             /* INDEX and footer read and checked */
	char err[512];
};

struct img_section {
	struct cryo_section_header h;
	uint64_t offset;          /* file offset of the section header */
};

/* Reads and checks the 16-byte file header. 0 or -1 (message in r->err). */
int img_open(struct img_reader *r, int fd);
/* Reads the next section header. 1: a section (its payload must then be read with img_payload or
 * img_skip); 0: the INDEX was reached and it and the footer were read and checked (end of image);
 * -1: error. */
int img_next(struct img_reader *r, struct img_section *s);
/* Reads the payload (raw_length bytes, codec 0) into buf and checks its CRC. */
int img_payload(struct img_reader *r, const struct img_section *s, void *buf);
/* Reads and checks a payload the caller does not want. */
int img_skip(struct img_reader *r, const struct img_section *s);
void img_close(struct img_reader *r);

/* CRC32C of a buffer (hardware-assisted when the CPU can). */
uint32_t img_crc(const void *buf, size_t len);

/* For a regular file only: the section holding store page `store_index` of process `owner`, found
 * through the footer and the INDEX (FORMAT.md §8, §9) and read with pread (the sequential position is
 * not moved), its CRC checked. 1: found, *page points into *buf (malloc'd, caller frees); 0: not a
 * seekable file or not found; -1: damaged (message in r->err). */
int img_pread_page(struct img_reader *r, uint32_t owner, uint64_t store_index, unsigned char **buf,
		   const unsigned char **page);

/* The limit of FORMAT.md §3.2 for a section type. */
uint64_t img_type_limit(uint16_t type);
const char *img_type_name(uint16_t type);

#endif
