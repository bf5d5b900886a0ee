/* A small msgpack decoder: the whole payload is decoded into a tree of nodes that point into the
 * caller's buffer (strings and bins are not copied), so the buffer must outlive the tree. */
#ifndef CRYO_MSGPACK_READ_H
#define CRYO_MSGPACK_READ_H

#include <stddef.h>
#include <stdint.h>

enum mp_type { MP_NIL, MP_BOOL, MP_INT, MP_FLOAT, MP_STR, MP_BIN, MP_ARRAY, MP_MAP, MP_EXT };

struct mp_node {
	enum mp_type type;
	uint32_t len;               /* STR/BIN/EXT bytes, ARRAY items, MAP pairs */
	int is_unsigned;            /* MP_INT: value is in u (uint64 above INT64_MAX) */
	union {
		int64_t i;
		uint64_t u;
		double f;
		int b;
	} num;
	const unsigned char *bytes; /* STR/BIN/EXT */
	struct mp_node *items;      /* ARRAY: len nodes; MAP: 2*len nodes, key then value */
};

/* Decodes exactly one object filling buf[0..len). Returns 0, or -1 with a message naming the byte
 * offset in err. The tree is freed with mp_free. */
int mp_decode(const void *buf, size_t len, struct mp_node **out, char *err, size_t errlen);
void mp_free(struct mp_node *root);

/* Lookups: NULL when absent. mp_get returns NULL for a nil value too (FORMAT.md §6: same meaning). */
const struct mp_node *mp_get(const struct mp_node *map, const char *key);
const struct mp_node *mp_at(const struct mp_node *array, uint32_t i);
uint32_t mp_count(const struct mp_node *array);   /* 0 unless an array */

/* Conversions: return 0 on success, -1 if the node is absent or of another type. */
int mp_int(const struct mp_node *n, int64_t *out);
int mp_uint(const struct mp_node *n, uint64_t *out);
int mp_bool(const struct mp_node *n, int *out);
/* STR or BIN (FORMAT.md: byte strings may be either). */
int mp_bytes(const struct mp_node *n, const unsigned char **ptr, size_t *len);
/* A NUL-terminated malloc'd copy of a STR/BIN, or NULL. */
char *mp_strdup(const struct mp_node *n);
/* Convenience: value of key as int/uint with a default when absent or nil. */
int64_t mp_get_int(const struct mp_node *map, const char *key, int64_t dflt);
uint64_t mp_get_uint(const struct mp_node *map, const char *key, uint64_t dflt);
/* A bin of up to 8 little-endian bytes (signal masks, caps) as a u64; dflt when absent. */
uint64_t mp_get_le64(const struct mp_node *map, const char *key, uint64_t dflt);

#endif
