/* Shared between the files of agent/xfrm only. */
#pragma once

#include <stddef.h>

#include "xfrm/xfrm.h"

/* Grows *items (elements of elem bytes, capacity *cap) to hold n + 1. */
int ts_xfrm_grow(void **items, size_t *cap, size_t n, size_t elem);
