#ifndef CRYO_CRC32C_H
#define CRYO_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC32C (Castagnoli). Start with crc = 0 and feed chunks: crc = crc32c_update(crc, buf, len). */
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);

#endif
