/* render_c.h: C source for the CPU device from a kernel graph (devices/cpu/render_c.c). */
#ifndef LG_RENDER_C_H
#define LG_RENDER_C_H
#include "internal.h"

/* Render the kernel rooted at sink (docs/kernel_ir.md) as one C function `name` (a C
 * identifier) with the CPU calling convention of luagrad.h. *src is malloc'd: free it with
 * lg_free. The kernel does all of its work for every core_id: launch it on one core. */
lg_status lg_render_c(lg_ctx *ctx, lg_uop *sink, const char *name, char **src);

#endif
