/* strbuf.h: a growing string for the engine's printers (graphs, kernel source). */
#ifndef LG_STRBUF_H
#define LG_STRBUF_H
#include <stdbool.h>
#include <stddef.h>

typedef struct lg_strbuf {
  char *p;   /* malloc'd, NUL-terminated once anything was written */
  size_t len, cap;
  bool oom;  /* a write failed: the text is incomplete */
} lg_strbuf;

/* Append printf-style text; on allocation failure sets oom and appends nothing more. */
void lg_strbuf_put(lg_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
