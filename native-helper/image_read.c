/* See image_read.h. */
#include "image_read.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"

/* CRC32C with the SSE4.2 crc32 instruction when the CPU has it: the restorer checks every byte of
 * gigabytes of page data, and the table-driven crc32c_update costs several times more. The same
 * polynomial, reflection and inversions, so the result is the same. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t c = ~crc & 0xffffffffu;

	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}

static uint32_t crc(const void *buf, size_t len)
{
	static int hw = -1;

	if (hw < 0)
		hw = __builtin_cpu_supports("sse4.2");
	return hw ? crc32c_hw(0, buf, len) : crc32c_update(0, buf, len);
}

uint32_t img_crc(const void *buf, size_t len)
{
	return crc(buf, len);
}

static int img_err(struct img_reader *r, uint64_t at, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(r->err, sizeof r->err, "image byte %llu: ", (unsigned long long)at);

	va_start(ap, fmt);
	vsnprintf(r->err + n, sizeof r->err - n, fmt, ap);
	va_end(ap);
	return -1;
}

static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const unsigned char *p) { return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16; }
static uint64_t le64(const unsigned char *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* Reads exactly len bytes; a short read is a truncated image. */
static int read_exact(struct img_reader *r, void *buf, size_t len, const char *what)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(r->fd, (char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			return img_err(r, r->offset + done, "reading %s: %s", what, strerror(e));
		}
		if (n == 0)
			return img_err(r, r->offset + done, "truncated image: end of input inside %s "
				       "(%zu of %zu bytes)", what, done, len);
		done += n;
	}
	r->offset += len;
	return 0;
}

uint64_t img_type_limit(uint16_t type)
{
	if (type == CRYO_SEC_PAGEDATA || type == CRYO_SEC_BLOB)
		return CRYO_MAX_DATA_SECTION;
	return CRYO_MAX_META_SECTION;
}

const char *img_type_name(uint16_t type)
{
	switch (type) {
	case CRYO_SEC_IMAGE_META: return "IMAGE_META";
	case CRYO_SEC_PROCESS: return "PROCESS";
	case CRYO_SEC_PAGEMAP: return "PAGEMAP";
	case CRYO_SEC_PAGEDATA: return "PAGEDATA";
	case CRYO_SEC_BLOB: return "BLOB";
	case CRYO_SEC_INDEX: return "INDEX";
	}
	return "unknown";
}

int img_open(struct img_reader *r, int fd)
{
	unsigned char h[CRYO_FILE_HEADER_SIZE];

	memset(r, 0, sizeof *r);
	r->fd = fd;
	if (read_exact(r, h, sizeof h, "the file header"))
		return -1;
	if (memcmp(h, CRYO_FILE_MAGIC, 8))
		return img_err(r, 0, "bad magic: expected \"CRYO-IMG\", this is not a .cryo image");
	if (crc(h, 12) != le32(h + 12))
		return img_err(r, 12, "file header CRC mismatch (expected %08x, found %08x)",
			       le32(h + 12), crc(h, 12));
	if (le16(h + 8) != CRYO_MAJOR)
		return img_err(r, 8, "unsupported major version %u (this reader knows %d)", le16(h + 8),
			       CRYO_MAJOR);
	return 0;
}

static void decode_header(const unsigned char *b, struct cryo_section_header *h)
{
	h->type = le16(b + 4);
	h->codec = le16(b + 6);
	h->owner = le32(b + 8);
	h->flags = le32(b + 12);
	h->key = le64(b + 16);
	h->stored_length = le64(b + 24);
	h->raw_length = le64(b + 32);
	h->payload_crc = le32(b + 40);
	h->header_crc = le32(b + 44);
}

static int check_header(struct img_reader *r, const unsigned char *b, const struct img_section *s)
{
	const struct cryo_section_header *h = &s->h;
	uint32_t c = crc(b, 44);

	if (memcmp(b, CRYO_SECTION_MAGIC, 4))
		return img_err(r, s->offset, "bad section magic: expected \"CSEC\"");
	if (c != h->header_crc)
		return img_err(r, s->offset + 44, "section header CRC mismatch (expected %08x, found %08x)",
			       h->header_crc, c);
	if (h->flags)
		return img_err(r, s->offset + 12, "section flags %#x: must be 0", h->flags);
	if (h->codec != CRYO_CODEC_RAW)
		return img_err(r, s->offset + 6, "%s section uses codec %u, which this reader does not know",
			       img_type_name(h->type), h->codec);
	if (h->stored_length != h->raw_length)
		return img_err(r, s->offset + 24, "raw section with stored_length %llu != raw_length %llu",
			       (unsigned long long)h->stored_length, (unsigned long long)h->raw_length);
	if (h->raw_length > img_type_limit(h->type))
		return img_err(r, s->offset + 32, "%s section of %llu bytes exceeds the limit of %llu",
			       img_type_name(h->type), (unsigned long long)h->raw_length,
			       (unsigned long long)img_type_limit(h->type));
	return 0;
}

static int remember(struct img_reader *r, const struct img_section *s)
{
	if ((size_t)r->sections * 2 + 2 > r->seen_cap) {
		size_t cap = r->seen_cap ? r->seen_cap * 2 : 1024;
		uint64_t *n = realloc(r->seen, cap * sizeof *n);
		if (!n)
			return img_err(r, s->offset, "out of memory");
		r->seen = n;
		r->seen_cap = cap;
	}
	r->seen[2 * r->sections] = s->offset;
	r->seen[2 * r->sections + 1] = s->h.header_crc;
	r->sections++;
	return 0;
}

static int check_index(struct img_reader *r, const struct img_section *s, const unsigned char *p)
{
	uint64_t n = s->h.raw_length / CRYO_INDEX_ENTRY_SIZE;

	if (s->h.raw_length % CRYO_INDEX_ENTRY_SIZE)
		return img_err(r, s->offset + 32, "INDEX length %llu is not a multiple of %d",
			       (unsigned long long)s->h.raw_length, CRYO_INDEX_ENTRY_SIZE);
	if (n != r->sections)
		return img_err(r, s->offset, "INDEX lists %llu sections, the file holds %u",
			       (unsigned long long)n, r->sections);
	for (uint64_t i = 0; i < n; i++) {
		const unsigned char *e = p + i * CRYO_INDEX_ENTRY_SIZE;
		if (le64(e) != r->seen[2 * i] || le32(e + 8 + 44) != r->seen[2 * i + 1])
			return img_err(r, s->offset + CRYO_SECTION_HEADER_SIZE + i * CRYO_INDEX_ENTRY_SIZE,
				       "INDEX entry %llu does not match the section at byte %llu",
				       (unsigned long long)i, (unsigned long long)r->seen[2 * i]);
	}
	return 0;
}

static int check_footer(struct img_reader *r, uint64_t index_offset)
{
	unsigned char f[CRYO_FOOTER_SIZE], extra;
	uint64_t at = r->offset;
	uint32_t c;
	ssize_t n;

	if (read_exact(r, f, sizeof f, "the footer"))
		return -1;
	if (memcmp(f + 24, CRYO_FOOTER_MAGIC, 8))
		return img_err(r, at + 24, "bad footer magic: expected \"CRYO-END\"");
	c = crc32c_update(crc32c_update(0, f, 20), f + 24, 8);
	if (c != le32(f + 20))
		return img_err(r, at + 20, "footer CRC mismatch (expected %08x, found %08x)", le32(f + 20), c);
	if (le64(f) != index_offset)
		return img_err(r, at, "footer index_offset %llu, the INDEX is at %llu",
			       (unsigned long long)le64(f), (unsigned long long)index_offset);
	if (le64(f + 8) != r->offset)
		return img_err(r, at + 8, "footer file_length %llu, the file is %llu bytes",
			       (unsigned long long)le64(f + 8), (unsigned long long)r->offset);
	if (le32(f + 16) != r->sections)
		return img_err(r, at + 16, "footer section_count %u, the file holds %u", le32(f + 16),
			       r->sections);
	do
		n = read(r->fd, &extra, 1);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		return img_err(r, r->offset, "trailing bytes after the footer");
	return 0;
}

static int finish(struct img_reader *r, const struct img_section *s)
{
	unsigned char *p = malloc(s->h.raw_length ? s->h.raw_length : 1);
	int rc = -1;

	if (!p)
		return img_err(r, s->offset, "out of memory for the INDEX");
	if (img_payload(r, s, p) || check_index(r, s, p) || check_footer(r, s->offset))
		goto out;
	r->finished = 1;
	rc = 0;
out:
	free(p);
	return rc;
}

int img_next(struct img_reader *r, struct img_section *s)
{
	unsigned char b[CRYO_SECTION_HEADER_SIZE];

	if (r->finished)
		return 0;
	s->offset = r->offset;
	if (read_exact(r, b, sizeof b, "a section header"))
		return -1;
	decode_header(b, &s->h);
	if (check_header(r, b, s))
		return -1;
	if (s->h.type == CRYO_SEC_INDEX) {
		if (s->h.owner || s->h.key)
			return img_err(r, s->offset + 8, "INDEX section with owner %u and key %llu (both must be 0)",
				       s->h.owner, (unsigned long long)s->h.key);
		return finish(r, s) ? -1 : 0;
	}
	if (remember(r, s))
		return -1;
	return 1;
}

int img_payload(struct img_reader *r, const struct img_section *s, void *buf)
{
	uint64_t at = r->offset;
	uint32_t c;

	if (read_exact(r, buf, s->h.stored_length, "a section payload"))
		return -1;
	c = crc(buf, s->h.stored_length);
	if (c != s->h.payload_crc)
		return img_err(r, at, "%s section (header at byte %llu): payload CRC mismatch "
			       "(expected %08x, found %08x)", img_type_name(s->h.type),
			       (unsigned long long)s->offset, s->h.payload_crc, c);
	return 0;
}

int img_skip(struct img_reader *r, const struct img_section *s)
{
	void *p = malloc(s->h.stored_length ? s->h.stored_length : 1);
	int rc;

	if (!p)
		return img_err(r, s->offset, "out of memory");
	rc = img_payload(r, s, p);
	free(p);
	return rc;
}

void img_close(struct img_reader *r)
{
	free(r->seen);
	r->seen = NULL;
}

static int pread_exact(int fd, void *buf, size_t len, uint64_t at)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(at + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += n;
	}
	return 0;
}

/* Reads and checks the INDEX of a regular file; *entries is malloc'd, *count entries of 56 bytes. */
static int load_index(struct img_reader *r, unsigned char **entries, uint64_t *count)
{
	struct stat st;
	unsigned char f[CRYO_FOOTER_SIZE], h[CRYO_SECTION_HEADER_SIZE];
	uint64_t at, len;

	*entries = NULL;
	if (fstat(r->fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < CRYO_FOOTER_SIZE + 16)
		return 0;
	if (pread_exact(r->fd, f, sizeof f, st.st_size - CRYO_FOOTER_SIZE) || memcmp(f + 24, CRYO_FOOTER_MAGIC, 8) ||
	    crc32c_update(crc32c_update(0, f, 20), f + 24, 8) != le32(f + 20) || le64(f + 8) != (uint64_t)st.st_size)
		return 0; /* the sequential pass will say what is wrong */
	at = le64(f);
	if (pread_exact(r->fd, h, sizeof h, at) || crc(h, 44) != le32(h + 44) || le16(h + 4) != CRYO_SEC_INDEX)
		return 0;
	len = le64(h + 32);
	if (len % CRYO_INDEX_ENTRY_SIZE || len > CRYO_MAX_META_SECTION || !(*entries = malloc(len ? len : 1)))
		return 0;
	if (pread_exact(r->fd, *entries, len, at + CRYO_SECTION_HEADER_SIZE) || crc(*entries, len) != le32(h + 40)) {
		free(*entries);
		*entries = NULL;
		return 0;
	}
	*count = len / CRYO_INDEX_ENTRY_SIZE;
	return 1;
}

int img_pread_page(struct img_reader *r, uint32_t owner, uint64_t store_index, unsigned char **buf,
		   const unsigned char **page)
{
	unsigned char *entries;
	uint64_t count;
	int rc = 0;

	*buf = NULL;
	if (load_index(r, &entries, &count) <= 0)
		return 0;
	for (uint64_t i = 0; i < count && !rc; i++) {
		const unsigned char *e = entries + i * CRYO_INDEX_ENTRY_SIZE, *h = e + 8;
		uint64_t key = le64(h + 16), len = le64(h + 32);
		if (le16(h + 4) != CRYO_SEC_PAGEDATA || le32(h + 8) != owner || crc(h, 44) != le32(h + 44) ||
		    le16(h + 6) != CRYO_CODEC_RAW || len > CRYO_MAX_DATA_SECTION || store_index < key ||
		    store_index >= key + len / CRYO_PAGE_SIZE)
			continue;
		*buf = malloc(len);
		if (!*buf || pread_exact(r->fd, *buf, len, le64(e) + CRYO_SECTION_HEADER_SIZE)) {
			rc = 0;
			break;
		}
		if (crc(*buf, len) != le32(h + 40)) {
			rc = img_err(r, le64(e) + CRYO_SECTION_HEADER_SIZE, "PAGEDATA section (header at byte %llu): "
				     "payload CRC mismatch (expected %08x, found %08x)", (unsigned long long)le64(e),
				     le32(h + 40), crc(*buf, len));
			break;
		}
		*page = *buf + (store_index - key) * CRYO_PAGE_SIZE;
		rc = 1;
	}
	if (rc != 1) {
		free(*buf);
		*buf = NULL;
	}
	free(entries);
	return rc;
}
