/* See msgpack_read.h. A recursive-descent decoder; nesting is limited so that a malicious image cannot
 * exhaust the stack, and every length is checked against the bytes left before anything is allocated. */
#include "msgpack_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MP_MAX_DEPTH 64

struct mp_cursor {
	const unsigned char *buf;
	size_t len;
	size_t pos;
	char *err;
	size_t errlen;
};

static int mp_error(struct mp_cursor *c, const char *what)
{
	if (c->err && c->errlen)
		snprintf(c->err, c->errlen, "malformed msgpack at byte %zu: %s", c->pos, what);
	return -1;
}

static int need(struct mp_cursor *c, size_t n)
{
	if (c->len - c->pos < n)
		return mp_error(c, "truncated");
	return 0;
}

static uint64_t be(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static int read_be(struct mp_cursor *c, int n, uint64_t *out)
{
	if (need(c, n))
		return -1;
	*out = be(c->buf + c->pos, n);
	c->pos += n;
	return 0;
}

static int decode_node(struct mp_cursor *c, struct mp_node *n, int depth);
static int le_bin(const struct mp_node *n, uint64_t *out);

static int take_bytes(struct mp_cursor *c, struct mp_node *n, enum mp_type type, uint64_t len)
{
	if (need(c, len))
		return -1;
	n->type = type;
	n->len = (uint32_t)len;
	n->bytes = c->buf + c->pos;
	c->pos += len;
	return 0;
}

static int take_items(struct mp_cursor *c, struct mp_node *n, enum mp_type type, uint64_t count, int depth)
{
	uint64_t nodes = type == MP_MAP ? count * 2 : count;

	/* every item takes at least one byte: refuse counts the payload cannot hold before allocating */
	if (nodes > c->len - c->pos)
		return mp_error(c, "container count larger than the data");
	if (depth >= MP_MAX_DEPTH)
		return mp_error(c, "nested too deeply");
	n->type = type;
	n->len = (uint32_t)count;
	n->items = nodes ? calloc(nodes, sizeof *n->items) : NULL;
	if (nodes && !n->items)
		return mp_error(c, "out of memory");
	for (uint64_t i = 0; i < nodes; i++)
		if (decode_node(c, &n->items[i], depth + 1))
			return -1;
	return 0;
}

static int decode_ext(struct mp_cursor *c, struct mp_node *n, uint64_t len)
{
	if (need(c, 1))
		return -1;
	c->pos++; /* ext type byte: kept nowhere, the format uses no extensions */
	return take_bytes(c, n, MP_EXT, len);
}

static int decode_float(struct mp_cursor *c, struct mp_node *n, int size)
{
	uint64_t bits;

	if (read_be(c, size, &bits))
		return -1;
	n->type = MP_FLOAT;
	if (size == 4) {
		float f;
		uint32_t b32 = (uint32_t)bits;
		memcpy(&f, &b32, 4);
		n->num.f = f;
	} else {
		memcpy(&n->num.f, &bits, 8);
	}
	return 0;
}

static int decode_sized(struct mp_cursor *c, struct mp_node *n, unsigned char t, int depth)
{
	uint64_t v;

	switch (t) {
	case 0xc4: case 0xc5: case 0xc6:
		return read_be(c, 1 << (t - 0xc4), &v) ? -1 : take_bytes(c, n, MP_BIN, v);
	case 0xc7: case 0xc8: case 0xc9:
		return read_be(c, 1 << (t - 0xc7), &v) ? -1 : decode_ext(c, n, v);
	case 0xca: return decode_float(c, n, 4);
	case 0xcb: return decode_float(c, n, 8);
	case 0xcc: case 0xcd: case 0xce: case 0xcf:
		if (read_be(c, 1 << (t - 0xcc), &v))
			return -1;
		n->type = MP_INT;
		n->num.u = v;
		n->is_unsigned = v > INT64_MAX;
		return 0;
	case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
		int size = 1 << (t - 0xd0);
		if (read_be(c, size, &v))
			return -1;
		if (size < 8 && (v >> (size * 8 - 1)) & 1)
			v |= ~0ull << (size * 8); /* sign-extend */
		n->type = MP_INT;
		n->num.i = (int64_t)v;
		return 0;
	}
	case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
		return decode_ext(c, n, 1u << (t - 0xd4));
	case 0xd9: case 0xda: case 0xdb:
		return read_be(c, 1 << (t - 0xd9), &v) ? -1 : take_bytes(c, n, MP_STR, v);
	case 0xdc: case 0xdd:
		return read_be(c, 2 << (t - 0xdc), &v) ? -1 : take_items(c, n, MP_ARRAY, v, depth);
	case 0xde: case 0xdf:
		return read_be(c, 2 << (t - 0xde), &v) ? -1 : take_items(c, n, MP_MAP, v, depth);
	}
	c->pos--;
	return mp_error(c, "reserved type byte 0xc1");
}

static int decode_node(struct mp_cursor *c, struct mp_node *n, int depth)
{
	unsigned char t;

	if (need(c, 1))
		return -1;
	t = c->buf[c->pos++];
	if (t <= 0x7f || t >= 0xe0) {
		n->type = MP_INT;
		n->num.i = (int8_t)t;
		if (t <= 0x7f)
			n->num.i = t;
		return 0;
	}
	if (t <= 0x8f)
		return take_items(c, n, MP_MAP, t & 0x0f, depth);
	if (t <= 0x9f)
		return take_items(c, n, MP_ARRAY, t & 0x0f, depth);
	if (t <= 0xbf)
		return take_bytes(c, n, MP_STR, t & 0x1f);
	if (t == 0xc0) {
		n->type = MP_NIL;
		return 0;
	}
	if (t == 0xc2 || t == 0xc3) {
		n->type = MP_BOOL;
		n->num.b = t == 0xc3;
		return 0;
	}
	return decode_sized(c, n, t, depth);
}

static void free_items(struct mp_node *n)
{
	if (n->type != MP_ARRAY && n->type != MP_MAP)
		return;
	uint64_t nodes = n->type == MP_MAP ? (uint64_t)n->len * 2 : n->len;
	if (n->items)
		for (uint64_t i = 0; i < nodes; i++)
			free_items(&n->items[i]);
	free(n->items);
	n->items = NULL;
}

void mp_free(struct mp_node *root)
{
	if (!root)
		return;
	free_items(root);
	free(root);
}

int mp_decode(const void *buf, size_t len, struct mp_node **out, char *err, size_t errlen)
{
	struct mp_cursor c = { buf, len, 0, err, errlen };
	struct mp_node *root = calloc(1, sizeof *root);

	*out = NULL;
	if (!root)
		return mp_error(&c, "out of memory");
	if (decode_node(&c, root, 0))
		goto fail;
	if (c.pos != len) {
		mp_error(&c, "trailing bytes after the object");
		goto fail;
	}
	*out = root;
	return 0;
fail:
	mp_free(root);
	return -1;
}

const struct mp_node *mp_get(const struct mp_node *map, const char *key)
{
	size_t klen = strlen(key);

	if (!map || map->type != MP_MAP)
		return NULL;
	for (uint32_t i = 0; i < map->len; i++) {
		const struct mp_node *k = &map->items[2 * i];
		if (k->type == MP_STR && k->len == klen && !memcmp(k->bytes, key, klen)) {
			const struct mp_node *v = &map->items[2 * i + 1];
			return v->type == MP_NIL ? NULL : v;
		}
	}
	return NULL;
}

uint32_t mp_count(const struct mp_node *array)
{
	return array && array->type == MP_ARRAY ? array->len : 0;
}

const struct mp_node *mp_at(const struct mp_node *array, uint32_t i)
{
	if (!array || array->type != MP_ARRAY || i >= array->len)
		return NULL;
	return array->items[i].type == MP_NIL ? NULL : &array->items[i];
}

int mp_int(const struct mp_node *n, int64_t *out)
{
	uint64_t v;

	if (!le_bin(n, &v)) {
		*out = (int64_t)v;
		return 0;
	}
	if (!n || n->type != MP_INT || n->is_unsigned)
		return -1;
	*out = n->num.i;
	return 0;
}

/* FORMAT.md §6: a 64-bit integer field may also come as a bin of up to 8 little-endian bytes */
static int le_bin(const struct mp_node *n, uint64_t *out)
{
	uint64_t v = 0;

	if (!n || n->type != MP_BIN || n->len > 8)
		return -1;
	for (uint32_t i = 0; i < n->len; i++)
		v |= (uint64_t)n->bytes[i] << (8 * i);
	*out = v;
	return 0;
}

int mp_uint(const struct mp_node *n, uint64_t *out)
{
	if (!le_bin(n, out))
		return 0;
	if (!n || n->type != MP_INT || (!n->is_unsigned && n->num.i < 0))
		return -1;
	*out = n->num.u;
	return 0;
}

int mp_bool(const struct mp_node *n, int *out)
{
	if (!n || n->type != MP_BOOL)
		return -1;
	*out = n->num.b;
	return 0;
}

int mp_bytes(const struct mp_node *n, const unsigned char **ptr, size_t *len)
{
	if (!n || (n->type != MP_STR && n->type != MP_BIN))
		return -1;
	*ptr = n->bytes;
	*len = n->len;
	return 0;
}

char *mp_strdup(const struct mp_node *n)
{
	const unsigned char *p;
	size_t len;
	char *s;

	if (mp_bytes(n, &p, &len))
		return NULL;
	s = malloc(len + 1);
	if (!s)
		return NULL;
	memcpy(s, p, len);
	s[len] = 0;
	return s;
}

int64_t mp_get_int(const struct mp_node *map, const char *key, int64_t dflt)
{
	int64_t v;
	return mp_int(mp_get(map, key), &v) ? dflt : v;
}

uint64_t mp_get_uint(const struct mp_node *map, const char *key, uint64_t dflt)
{
	uint64_t v;
	return mp_uint(mp_get(map, key), &v) ? dflt : v;
}

uint64_t mp_get_le64(const struct mp_node *map, const char *key, uint64_t dflt)
{
	const struct mp_node *n = mp_get(map, key);
	uint64_t v;

	if (n && n->type == MP_INT)  /* readers also accept an integer for a bit set */
		return n->num.u;
	return le_bin(n, &v) ? dflt : v;
}
