/* sized.h - reading a caller's sized options struct (docs/api.md, "Structs
 * that grow"): one whose first field, size_t size, is 0 or sizeof the
 * struct the caller was built with. */
#ifndef WEFT_BASE_SIZED_H
#define WEFT_BASE_SIZED_H

#include <errno.h>
#include <stddef.h>
#include <string.h>

/* Copy the caller's struct src (src_size: its size field) into dst, this
 * library's version of size bytes, zeroing what src does not have; src
 * NULL: all zero. 0; -EINVAL: src_size set but below size (an older struct
 * than this library reads); -E2BIG: a newer, larger struct with non-zero
 * bytes this library does not know. dst is all zero after a failure. */
static inline int weft__opts_in(void *dst, size_t size, const void *src, size_t src_size)
{
	memset(dst, 0, size);
	if (!src)
		return 0;
	if (src_size != 0 && src_size < size)
		return -EINVAL;
	for (size_t i = size; i < src_size; i++)
		if (((const unsigned char *)src)[i])
			return -E2BIG;
	memcpy(dst, src, size);
	return 0;
}

#endif
