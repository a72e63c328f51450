/* ptrmap.h: an open-addressing map from pointers to pointers (visited sets, memo tables). */
#ifndef LG_PTRMAP_H
#define LG_PTRMAP_H
#include <stdbool.h>
#include <stdint.h>

typedef struct lg_ptrmap {
  const void **keys;
  void **vals;
  uint64_t cap; /* power of two, or 0 before the first insert */
  uint64_t count;
} lg_ptrmap;

/* Zero-initialise an lg_ptrmap to start; lg_ptrmap_free releases its storage (not the values). */
void lg_ptrmap_free(lg_ptrmap *m);
/* Returns true and sets *val when key is present. */
bool lg_ptrmap_get(const lg_ptrmap *m, const void *key, void **val);
/* Insert or overwrite; false when out of memory. key must not be NULL. */
bool lg_ptrmap_put(lg_ptrmap *m, const void *key, void *val);

#endif
