/* ptrmap.c: linear probing over a power-of-two table, load factor at most 1/2. */
#include "ptrmap.h"

#include <stdlib.h>

static uint64_t slot_of(const void *key, uint64_t cap) {
  uint64_t h = (uint64_t)(uintptr_t)key;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 29;
  return h & (cap - 1);
}

void lg_ptrmap_free(lg_ptrmap *m) {
  free(m->keys);
  free(m->vals);
  *m = (lg_ptrmap){0};
}

bool lg_ptrmap_get(const lg_ptrmap *m, const void *key, void **val) {
  if (m->cap == 0) return false;
  for (uint64_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
    if (m->keys[i] == key) {
      if (val) *val = m->vals[i];
      return true;
    }
    if (!m->keys[i]) return false;
  }
}

static bool grow(lg_ptrmap *m) {
  uint64_t cap = m->cap ? m->cap * 2 : 64;
  const void **keys = calloc(cap, sizeof *keys);
  void **vals = calloc(cap, sizeof *vals);
  if (!keys || !vals) {
    free(keys);
    free(vals);
    return false;
  }
  for (uint64_t i = 0; i < m->cap; i++) {
    if (!m->keys[i]) continue;
    uint64_t j = slot_of(m->keys[i], cap);
    while (keys[j]) j = (j + 1) & (cap - 1);
    keys[j] = m->keys[i];
    vals[j] = m->vals[i];
  }
  free(m->keys);
  free(m->vals);
  m->keys = keys;
  m->vals = vals;
  m->cap = cap;
  return true;
}

bool lg_ptrmap_put(lg_ptrmap *m, const void *key, void *val) {
  if ((m->count + 1) * 2 > m->cap && !grow(m)) return false;
  uint64_t i = slot_of(key, m->cap);
  while (m->keys[i] && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
  if (!m->keys[i]) m->count++;
  m->keys[i] = key;
  m->vals[i] = val;
  return true;
}
