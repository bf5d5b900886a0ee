/* Writes a .cryo image (docs/FORMAT.md) in one sequential pass: file header, framed and checksummed
 * sections, then the INDEX section and the footer. Works on pipes (never seeks). A file target is
 * written to "FILE.tmp.XXXXXX" next to it and renamed into place only by a successful iw_finish(). */
#ifndef CRYO_IMAGE_WRITE_H
#define CRYO_IMAGE_WRITE_H

#include <stddef.h>
#include <stdint.h>

struct image_writer {
	int fd;
	char *path;        /* the -o argument ("-" for stdout) */
	char *tmp_path;    /* temp file being written; NULL when streaming */
	int stream;        /* written in place: stdout, or an existing device/FIFO (no temp, no rename) */
	unsigned char *buf; /* output buffer for small writes */
	size_t buf_len;
	uint64_t offset;   /* bytes of the file produced so far (buffered included) */
	unsigned char *index;
	size_t index_len, index_cap;
	uint32_t sections;
};

/* path "-" means stdout; an existing non-regular file (/dev/null, a FIFO) is written in place.
 * Writes the file header. */
int iw_open(struct image_writer *w, const char *path);
/* One section with its whole (raw-codec) payload. The caller keeps the type's size limit. */
int iw_section(struct image_writer *w, uint16_t type, uint32_t owner, uint64_t key, const void *payload,
	       size_t len);
/* The same with the payload's CRC32C already computed by the caller. */
int iw_section_crc(struct image_writer *w, uint16_t type, uint32_t owner, uint64_t key, const void *payload,
		   size_t len, uint32_t payload_crc);
/* A blob: its bytes split into BLOB sections of at most 1 MiB (none when len is 0). */
int iw_blob(struct image_writer *w, uint32_t owner, uint64_t id, const void *data, size_t len);
/* INDEX + footer, flush, fsync and rename into place. Frees everything; on failure the temp is removed. */
int iw_finish(struct image_writer *w);
/* Drop a failed image: remove the temp file, free everything. Safe after iw_finish or a failed iw_open. */
void iw_abort(struct image_writer *w);

#endif
