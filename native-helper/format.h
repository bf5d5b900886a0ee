/* Constants of the .cryo image format. docs/FORMAT.md is the specification; names follow it. */
#ifndef CRYO_FORMAT_H
#define CRYO_FORMAT_H

#include <stdint.h>

#define CRYO_FILE_MAGIC        "CRYO-IMG"
#define CRYO_FILE_HEADER_SIZE  16
#define CRYO_MAJOR             1
#define CRYO_MINOR             0

#define CRYO_SECTION_MAGIC     "CSEC"
#define CRYO_SECTION_HEADER_SIZE 48

#define CRYO_FOOTER_MAGIC      "CRYO-END"
#define CRYO_FOOTER_SIZE       32

#define CRYO_INDEX_ENTRY_SIZE  56
#define CRYO_PAGEMAP_ENTRY_SIZE 24

#define CRYO_PAGE_SIZE         4096
#define CRYO_MAX_DATA_SECTION  (1u << 20)   /* PAGEDATA and BLOB payloads */
#define CRYO_MAX_META_SECTION  (64u << 20)  /* every other type */

enum cryo_section_type {
	CRYO_SEC_IMAGE_META = 1,
	CRYO_SEC_PROCESS    = 2,
	CRYO_SEC_PAGEMAP    = 3,
	CRYO_SEC_PAGEDATA   = 4,
	CRYO_SEC_BLOB       = 5,
	CRYO_SEC_INDEX      = 127,
};

enum cryo_codec {
	CRYO_CODEC_RAW = 0,
};

enum cryo_page_kind {
	CRYO_PAGE_DATA = 0,
	CRYO_PAGE_ZERO = 1,
};

/* The 48-byte section header, decoded. Serialised field by field (little-endian), never by memcpy. */
struct cryo_section_header {
	uint16_t type;
	uint16_t codec;
	uint32_t owner;
	uint32_t flags;
	uint64_t key;
	uint64_t stored_length;
	uint64_t raw_length;
	uint32_t payload_crc;
	uint32_t header_crc;
};

struct cryo_pagemap_entry {
	uint64_t vaddr;
	uint32_t page_count;
	uint16_t kind;
	uint16_t flags;
	uint64_t store_index;
};

#endif
