/* hostmem.h: host memory for the buffers of the CPU and LLVM devices (devices/cpu/hostmem.c).
 *
 * Buffers are 64-byte aligned. A freed buffer of 64 KiB or more is kept as a spare and handed
 * out again for a request of the same size (rounded up to the alignment): the steps of a
 * training loop allocate the same sizes again and again, and memory the C library has given
 * back to the system costs a page fault per 4 KiB when touched again. The oldest spares are
 * freed first once more than 1024 buffers or 1 GiB are kept. Buffers of 8 MiB or more are
 * 2 MiB aligned and advised onto transparent huge pages (beyond the reach of the TLB's 4 KiB
 * entries: a 2048 matmul walks B a row per step). One allocator serves one thread at a time
 * (its device's context). */
#ifndef LG_HOSTMEM_H
#define LG_HOSTMEM_H
#include <stdint.h>

typedef struct lg_hostmem lg_hostmem;

/* An allocator with no spares; NULL when out of memory. */
lg_hostmem *lg_hostmem_new(void);
/* Free the spares and the allocator; NULL is fine. */
void lg_hostmem_free(lg_hostmem *h);
/* nbytes (> 0) of 64-byte aligned memory, a spare of the same rounded size where one is kept;
 * NULL when out of memory. */
void *lg_hostmem_alloc(lg_hostmem *h, int64_t nbytes);
/* Give back a buffer of lg_hostmem_alloc(h, nbytes): kept as a spare, or freed. */
void lg_hostmem_release(lg_hostmem *h, void *mem, int64_t nbytes);

/* Tune the C library's malloc for tensor work; process-wide (hostmem.c says why). */
void lg_hostmem_tune_malloc(void);

#endif
