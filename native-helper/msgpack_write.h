/* A small msgpack encoder into one growing buffer. Maps and arrays are opened and closed; their entry
 * counts are filled in when they close, so callers never count in advance (containers always use the
 * 32-bit count forms, which every msgpack reader accepts). Errors are sticky: after an allocation
 * failure every call is a no-op and mpw_finish() reports it. */
#ifndef CRYO_MSGPACK_WRITE_H
#define CRYO_MSGPACK_WRITE_H

#include <stddef.h>
#include <stdint.h>

#define MPW_MAX_DEPTH 16

struct mpw {
	unsigned char *buf;
	size_t len, cap;
	int failed;
	int depth;
	struct {
		size_t header;   /* offset of the container's header */
		uint32_t items;  /* values written inside it (keys count as values) */
		int is_map;
	} stack[MPW_MAX_DEPTH];
};

void mpw_init(struct mpw *w);
void mpw_free(struct mpw *w);
/* 0 when the buffer holds one complete value, -1 (message recorded) otherwise. */
int mpw_finish(struct mpw *w);

void mpw_map(struct mpw *w);
void mpw_array(struct mpw *w);
void mpw_end(struct mpw *w);

void mpw_nil(struct mpw *w);
void mpw_bool(struct mpw *w, int v);
void mpw_int(struct mpw *w, int64_t v);
void mpw_uint(struct mpw *w, uint64_t v);
void mpw_str(struct mpw *w, const char *s);               /* a C string known to be text (keys...) */
void mpw_bin(struct mpw *w, const void *p, size_t len);
/* Kernel byte strings: str when valid UTF-8, bin otherwise (FORMAT.md §6). */
void mpw_text(struct mpw *w, const void *p, size_t len);
void mpw_ctext(struct mpw *w, const char *s);             /* mpw_text of a C string; NULL writes nil */
/* A 64-bit mask or capability set: bin(8), little-endian. */
void mpw_u64bin(struct mpw *w, uint64_t v);

/* key + value shorthands for maps */
void mpw_kint(struct mpw *w, const char *key, int64_t v);
void mpw_kuint(struct mpw *w, const char *key, uint64_t v);
void mpw_kstr(struct mpw *w, const char *key, const char *v);
void mpw_ktext(struct mpw *w, const char *key, const char *v);
void mpw_kbool(struct mpw *w, const char *key, int v);
void mpw_knil(struct mpw *w, const char *key);

#endif
