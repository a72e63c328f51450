/* strbuf.c: see strbuf.h. */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void lg_strbuf_put(lg_strbuf *b, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
  va_end(ap);
  if (n >= 0 && !b->oom && b->len + (size_t)n >= b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (b->len + (size_t)n >= cap) cap *= 2;
    char *p = realloc(b->p, cap);
    if (p) {
      b->p = p, b->cap = cap;
      vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap2);
    } else {
      b->oom = true;
    }
  }
  va_end(ap2);
  if (n >= 0 && !b->oom) b->len += (size_t)n;
}
