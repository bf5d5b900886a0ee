/* See msgpack_write.h. */
#include "msgpack_write.h"

#include <stdlib.h>
#include <string.h>

#include "errmsg.h"

void mpw_init(struct mpw *w)
{
	memset(w, 0, sizeof *w);
}

void mpw_free(struct mpw *w)
{
	free(w->buf);
	memset(w, 0, sizeof *w);
}

static int reserve(struct mpw *w, size_t more)
{
	if (w->failed)
		return -1;
	if (w->len + more <= w->cap)
		return 0;
	size_t cap = w->cap ? w->cap : 4096;
	while (cap < w->len + more)
		cap *= 2;
	unsigned char *p = realloc(w->buf, cap);
	if (!p) {
		w->failed = 1;
		return -1;
	}
	w->buf = p;
	w->cap = cap;
	return 0;
}

static void put(struct mpw *w, const void *p, size_t n)
{
	if (reserve(w, n))
		return;
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void put_be(struct mpw *w, unsigned char tag, uint64_t v, int bytes)
{
	unsigned char b[9];

	b[0] = tag;
	for (int i = 0; i < bytes; i++)
		b[1 + i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
	put(w, b, 1 + bytes);
}

/* Every value (and every key) counts as one item of the enclosing container. */
static void counted(struct mpw *w)
{
	if (w->depth > 0)
		w->stack[w->depth - 1].items++;
}

static void open_container(struct mpw *w, unsigned char tag, int is_map)
{
	counted(w);
	if (w->depth >= MPW_MAX_DEPTH) {
		w->failed = 1;
		return;
	}
	w->stack[w->depth].header = w->len;
	w->stack[w->depth].items = 0;
	w->stack[w->depth].is_map = is_map;
	w->depth++;
	put_be(w, tag, 0, 4);
}

void mpw_map(struct mpw *w)
{
	open_container(w, 0xdf, 1);
}

void mpw_array(struct mpw *w)
{
	open_container(w, 0xdd, 0);
}

void mpw_end(struct mpw *w)
{
	if (w->depth <= 0) {
		w->failed = 1;
		return;
	}
	w->depth--;
	if (w->failed)
		return;
	uint32_t n = w->stack[w->depth].items;
	if (w->stack[w->depth].is_map) {
		if (n % 2) {
			w->failed = 1;
			return;
		}
		n /= 2;
	}
	unsigned char *h = w->buf + w->stack[w->depth].header + 1;
	h[0] = n >> 24;
	h[1] = n >> 16;
	h[2] = n >> 8;
	h[3] = n;
}

int mpw_finish(struct mpw *w)
{
	if (w->failed)
		return cryo_fail(0, "encode metadata: out of memory or malformed structure");
	if (w->depth)
		return cryo_fail(0, "encode metadata: %d container(s) left open", w->depth);
	return 0;
}

void mpw_nil(struct mpw *w)
{
	counted(w);
	put(w, "\xc0", 1);
}

void mpw_bool(struct mpw *w, int v)
{
	counted(w);
	put(w, v ? "\xc3" : "\xc2", 1);
}

void mpw_uint(struct mpw *w, uint64_t v)
{
	counted(w);
	if (v < 128) {
		unsigned char b = (unsigned char)v;
		put(w, &b, 1);
	} else if (v <= 0xff) {
		put_be(w, 0xcc, v, 1);
	} else if (v <= 0xffff) {
		put_be(w, 0xcd, v, 2);
	} else if (v <= 0xffffffffu) {
		put_be(w, 0xce, v, 4);
	} else {
		put_be(w, 0xcf, v, 8);
	}
}

void mpw_int(struct mpw *w, int64_t v)
{
	if (v >= 0) {
		mpw_uint(w, (uint64_t)v);
		return;
	}
	counted(w);
	if (v >= -32) {
		unsigned char b = (unsigned char)(int8_t)v;
		put(w, &b, 1);
	} else if (v >= INT8_MIN) {
		put_be(w, 0xd0, (uint64_t)v, 1);
	} else if (v >= INT16_MIN) {
		put_be(w, 0xd1, (uint64_t)v, 2);
	} else if (v >= INT32_MIN) {
		put_be(w, 0xd2, (uint64_t)v, 4);
	} else {
		put_be(w, 0xd3, (uint64_t)v, 8);
	}
}

static void raw_header(struct mpw *w, int is_bin, size_t len)
{
	if (!is_bin && len < 32) {
		unsigned char b = 0xa0 | (unsigned char)len;
		put(w, &b, 1);
	} else if (len <= 0xff) {
		put_be(w, is_bin ? 0xc4 : 0xd9, len, 1);
	} else if (len <= 0xffff) {
		put_be(w, is_bin ? 0xc5 : 0xda, len, 2);
	} else {
		put_be(w, is_bin ? 0xc6 : 0xdb, len, 4);
	}
}

void mpw_bin(struct mpw *w, const void *p, size_t len)
{
	counted(w);
	raw_header(w, 1, len);
	put(w, p, len);
}

static void put_str(struct mpw *w, const void *p, size_t len)
{
	counted(w);
	raw_header(w, 0, len);
	put(w, p, len);
}

void mpw_str(struct mpw *w, const char *s)
{
	put_str(w, s, strlen(s));
}

/* Strict UTF-8 check: no overlongs, no surrogates, nothing above U+10FFFF. */
static int valid_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i];
		size_t extra;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			extra = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			extra = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			extra = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (i + extra >= n)
			return 0;
		for (size_t k = 1; k <= extra; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += extra + 1;
	}
	return 1;
}

void mpw_text(struct mpw *w, const void *p, size_t len)
{
	if (valid_utf8(p, len))
		put_str(w, p, len);
	else
		mpw_bin(w, p, len);
}

void mpw_ctext(struct mpw *w, const char *s)
{
	if (!s)
		mpw_nil(w);
	else
		mpw_text(w, s, strlen(s));
}

void mpw_u64bin(struct mpw *w, uint64_t v)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	mpw_bin(w, b, 8);
}

void mpw_kint(struct mpw *w, const char *key, int64_t v)
{
	mpw_str(w, key);
	mpw_int(w, v);
}

void mpw_kuint(struct mpw *w, const char *key, uint64_t v)
{
	mpw_str(w, key);
	mpw_uint(w, v);
}

void mpw_kstr(struct mpw *w, const char *key, const char *v)
{
	mpw_str(w, key);
	mpw_str(w, v);
}

void mpw_ktext(struct mpw *w, const char *key, const char *v)
{
	mpw_str(w, key);
	mpw_ctext(w, v);
}

void mpw_kbool(struct mpw *w, const char *key, int v)
{
	mpw_str(w, key);
	mpw_bool(w, v);
}

void mpw_knil(struct mpw *w, const char *key)
{
	mpw_str(w, key);
	mpw_nil(w);
}
