/* See image_write.h. Layouts are serialised field by field, little-endian, as FORMAT.md tables say. */
#include "image_write.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "crc32c.h"
#include "errmsg.h"
#include "format.h"

#define OUT_BUFFER (1u << 20)
/* Payloads this large skip the copy into the output buffer and go out with writev. */
#define DIRECT_WRITE (64u << 10)

static void le16(unsigned char *p, uint16_t v)
{
	p[0] = v, p[1] = v >> 8;
}

static void le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static const char *target_name(const struct image_writer *w)
{
	if (w->tmp_path)
		return w->tmp_path;
	return w->path && strcmp(w->path, "-") ? w->path : "stdout";
}

/* writev until everything is out: a pipe may take a little at a time. */
static int write_all(struct image_writer *w, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t r = writev(w->fd, iov, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return cryo_fail(errno, "write image to %s", target_name(w));
		}
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= iov->iov_len;
			iov++, n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + r;
			iov->iov_len -= r;
		}
	}
	return 0;
}

static int flush_with(struct image_writer *w, const void *extra, size_t extra_len)
{
	struct iovec iov[2] = {
		{ w->buf, w->buf_len },
		{ (void *)extra, extra_len },
	};
	int rc = write_all(w, iov, extra_len ? 2 : 1);
	w->buf_len = 0;
	return rc;
}

static int out(struct image_writer *w, const void *p, size_t n)
{
	if (n >= DIRECT_WRITE || w->buf_len + n > OUT_BUFFER) {
		if (n >= DIRECT_WRITE) {
			w->offset += n;
			return flush_with(w, p, n);
		}
		if (flush_with(w, NULL, 0))
			return -1;
	}
	memcpy(w->buf + w->buf_len, p, n);
	w->buf_len += n;
	w->offset += n;
	return 0;
}

static int open_target(struct image_writer *w, const char *path)
{
	w->path = strdup(path);
	if (!w->path)
		return cryo_fail(ENOMEM, "prepare image path %s", path);
	if (!strcmp(path, "-")) {
		if (isatty(STDOUT_FILENO))
			return cryo_fail(0, "refusing to write a binary image to a terminal (redirect stdout or use -o FILE)");
		w->fd = STDOUT_FILENO;
		w->stream = 1;
		return 0;
	}
	/* An existing non-regular file (a device such as /dev/null, a FIFO) is written in place, like
	 * stdout: a temporary file renamed over it would replace the device node itself. */
	struct stat st;
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		if (S_ISDIR(st.st_mode))
			return cryo_fail(EISDIR, "open image output %s", path);
		w->fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
		if (w->fd < 0)
			return cryo_fail(errno, "open image output %s", path);
		w->stream = 1;
		return 0;
	}
	if (asprintf(&w->tmp_path, "%s.tmp.XXXXXX", path) < 0) {
		w->tmp_path = NULL;
		return cryo_fail(ENOMEM, "prepare image path %s", path);
	}
	/* mkstemp creates the file with mode 0600: an image holds a process's secrets. */
	w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
	if (w->fd < 0) {
		int err = errno;
		free(w->tmp_path);
		w->tmp_path = NULL;
		return cryo_fail(err, "create temporary image next to %s", path);
	}
	return 0;
}

int iw_open(struct image_writer *w, const char *path)
{
	unsigned char h[CRYO_FILE_HEADER_SIZE];

	memset(w, 0, sizeof *w);
	w->fd = -1;
	w->buf = malloc(OUT_BUFFER);
	if (!w->buf)
		return cryo_fail(ENOMEM, "allocate image output buffer");
	if (open_target(w, path))
		return -1;
	memcpy(h, CRYO_FILE_MAGIC, 8);
	le16(h + 8, CRYO_MAJOR);
	le16(h + 10, CRYO_MINOR);
	le32(h + 12, crc32c_update(0, h, 12));
	return out(w, h, sizeof h);
}

static int remember(struct image_writer *w, uint64_t offset, const unsigned char *header)
{
	if (w->index_len + CRYO_INDEX_ENTRY_SIZE > w->index_cap) {
		size_t cap = w->index_cap ? w->index_cap * 2 : 64 * CRYO_INDEX_ENTRY_SIZE;
		unsigned char *p = realloc(w->index, cap);
		if (!p)
			return cryo_fail(ENOMEM, "grow the section index");
		w->index = p;
		w->index_cap = cap;
	}
	le64(w->index + w->index_len, offset);
	memcpy(w->index + w->index_len + 8, header, CRYO_SECTION_HEADER_SIZE);
	w->index_len += CRYO_INDEX_ENTRY_SIZE;
	return 0;
}

static void section_header(unsigned char *h, uint16_t type, uint32_t owner, uint64_t key, size_t len,
			   uint32_t payload_crc)
{
	memcpy(h, CRYO_SECTION_MAGIC, 4);
	le16(h + 4, type);
	le16(h + 6, CRYO_CODEC_RAW);
	le32(h + 8, owner);
	le32(h + 12, 0);
	le64(h + 16, key);
	le64(h + 24, len);
	le64(h + 32, len);
	le32(h + 40, payload_crc);
	le32(h + 44, crc32c_update(0, h, 44));
}

int iw_section_crc(struct image_writer *w, uint16_t type, uint32_t owner, uint64_t key, const void *payload,
		   size_t len, uint32_t payload_crc)
{
	unsigned char h[CRYO_SECTION_HEADER_SIZE];
	uint64_t at = w->offset;

	section_header(h, type, owner, key, len, payload_crc);
	if (type != CRYO_SEC_INDEX) {
		if (remember(w, at, h))
			return -1;
		w->sections++;
	}
	if (out(w, h, sizeof h) || out(w, payload, len))
		return -1;
	return 0;
}

int iw_section(struct image_writer *w, uint16_t type, uint32_t owner, uint64_t key, const void *payload,
	       size_t len)
{
	return iw_section_crc(w, type, owner, key, payload, len, crc32c_update(0, payload, len));
}

int iw_blob(struct image_writer *w, uint32_t owner, uint64_t id, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len > 0) {
		size_t n = len < CRYO_MAX_DATA_SECTION ? len : CRYO_MAX_DATA_SECTION;
		if (iw_section(w, CRYO_SEC_BLOB, owner, id, p, n))
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

static int write_trailer(struct image_writer *w)
{
	unsigned char f[CRYO_FOOTER_SIZE];
	uint64_t index_offset = w->offset;

	if (iw_section(w, CRYO_SEC_INDEX, 0, 0, w->index, w->index_len))
		return -1;
	le64(f, index_offset);
	le64(f + 8, w->offset + CRYO_FOOTER_SIZE);
	le32(f + 16, w->sections);
	memcpy(f + 24, CRYO_FOOTER_MAGIC, 8);
	le32(f + 20, crc32c_update(crc32c_update(0, f, 20), f + 24, 8));
	if (out(w, f, sizeof f))
		return -1;
	return flush_with(w, NULL, 0);
}

/* The rename itself is durable only once the directory is synced. Best effort: the image is complete
 * and in place either way. */
static void sync_directory(const char *path)
{
	char *dir = strdup(path);
	char *slash = dir ? strrchr(dir, '/') : NULL;
	int fd;

	if (!dir)
		return;
	if (slash == dir)
		slash[1] = 0;
	else if (slash)
		*slash = 0;
	fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(dir);
}

/* fsync, close, then rename: a crash leaves either the old file or the complete new one. */
static int commit_file(struct image_writer *w)
{
	int fd = w->fd;

	w->fd = -1;
	if (fsync(fd) < 0) {
		int err = errno;
		close(fd);
		return cryo_fail(err, "fsync %s", w->tmp_path);
	}
	if (close(fd) < 0)
		return cryo_fail(errno, "close %s", w->tmp_path);
	if (rename(w->tmp_path, w->path) < 0)
		return cryo_fail(errno, "rename %s to %s", w->tmp_path, w->path);
	free(w->tmp_path);
	w->tmp_path = NULL;
	sync_directory(w->path);
	return 0;
}

static void release(struct image_writer *w)
{
	free(w->buf);
	free(w->index);
	free(w->path);
	free(w->tmp_path);
	w->buf = w->index = NULL;
	w->path = w->tmp_path = NULL;
}

int iw_finish(struct image_writer *w)
{
	if (write_trailer(w))
		goto fail;
	if (w->tmp_path) {
		if (commit_file(w))
			goto fail;
	} else if (fsync(w->fd) < 0 && errno != EINVAL && errno != EROFS) {
		/* stdout redirected to a file: make it durable too. Pipes and devices give EINVAL. */
		cryo_fail(errno, "fsync %s", target_name(w));
		goto fail;
	}
	if (w->stream && w->fd != STDOUT_FILENO && close(w->fd) < 0) {
		w->fd = -1;
		cryo_fail(errno, "close %s", target_name(w));
		goto fail;
	}
	w->fd = -1;
	release(w);
	return 0;
fail:
	iw_abort(w);
	return -1;
}

void iw_abort(struct image_writer *w)
{
	if (w->fd >= 0 && w->fd != STDOUT_FILENO)
		close(w->fd);
	if (w->tmp_path)
		unlink(w->tmp_path);
	w->fd = -1;
	release(w);
}
