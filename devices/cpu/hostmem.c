/* hostmem.c: host memory with spare buffers, for the CPU and LLVM devices (hostmem.h). The
 * spares are a list, newest first; a request takes the newest spare of its size. */
#include <malloc.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "hostmem.h"

enum {
  ALIGN = 64,
  SPARE_MIN = 64 * 1024,  /* buffers from this size on are kept for reuse when freed ... */
  SPARE_COUNT = 1024      /* ... up to this many */
};
#define HUGE_PAGE ((size_t)2 << 20) /* a transparent huge page */
#define HUGE_MIN ((size_t)8 << 20)  /* buffers from this size on get them: beyond the reach of the
                                       TLB's 4 KiB entries (smaller ones stay on 4 KiB pages, as
                                       faulting huge pages in may compact memory first) */
#define SPARE_BYTES ((size_t)1 << 30) /* ... and this many bytes */

/* A freed buffer kept for reuse. */
typedef struct spare {
  void *mem;
  size_t size;
  struct spare *next;
} spare;

struct lg_hostmem {
  spare *spares; /* freed buffers of SPARE_MIN bytes or more, newest first */
  size_t spare_bytes;
};

lg_hostmem *lg_hostmem_new(void) { return calloc(1, sizeof(lg_hostmem)); }

void lg_hostmem_free(lg_hostmem *h) {
  if (!h) return;
  while (h->spares) {
    spare *k = h->spares;
    h->spares = k->next;
    free(k->mem);
    free(k);
  }
  free(h);
}

static size_t rounded(int64_t nbytes) { return ((size_t)nbytes + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

void *lg_hostmem_alloc(lg_hostmem *h, int64_t nbytes) {
  size_t size = (uint64_t)nbytes <= SIZE_MAX - ALIGN ? rounded(nbytes) : 0;
  for (spare **at = &h->spares; size && *at; at = &(*at)->next) {
    if ((*at)->size != size) continue;
    spare *k = *at;
    void *mem = k->mem;
    *at = k->next;
    h->spare_bytes -= size;
    free(k);
    return mem;
  }
  if (size >= HUGE_MIN) { /* 2 MiB pages: a 2048 matmul's column of B strides through 16 MB */
    void *mem = aligned_alloc(HUGE_PAGE, (size + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1));
    if (mem) madvise(mem, size, MADV_HUGEPAGE); /* advice: without it, 4 KiB pages */
    return mem;
  }
  return size ? aligned_alloc(ALIGN, size) : NULL; /* aligned_alloc wants a multiple of ALIGN */
}

void lg_hostmem_release(lg_hostmem *h, void *mem, int64_t nbytes) {
  size_t size = rounded(nbytes);
  spare *k = size >= SPARE_MIN && size <= SPARE_BYTES ? malloc(sizeof *k) : NULL;
  if (!k) {
    free(mem);
    return;
  }
  *k = (spare){mem, size, h->spares};
  h->spares = k;
  h->spare_bytes += size;
  int32_t count = 0;
  for (spare **at = &h->spares; *at;) {
    if (++count > SPARE_COUNT || h->spare_bytes > SPARE_BYTES) {
      spare *old = *at;
      *at = old->next;
      h->spare_bytes -= old->size;
      free(old->mem);
      free(old);
      count--;
    } else {
      at = &(*at)->next;
    }
  }
}

/* Process-wide, on purpose: tensor work frees and allocates nodes and small buffers at a high
 * rate, and glibc's default gives the top of the heap back to the system as soon as 128 KiB are
 * free there, so that the next allocations fault the same pages in again (a tiny realize took
 * 15 us instead of 9 in processes whose heap layout hit this). The top of the heap is kept up to
 * 64 MiB, and grown 16 MiB at a time. */
void lg_hostmem_tune_malloc(void) {
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_TOP_PAD, 16 << 20);
}
