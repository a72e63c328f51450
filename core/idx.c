/* idx.c: datasets on the host (luagrad.h, "weights and datasets on disk"): IDX files read with
 * zlib (gzread reads gzip and plain files alike) straight into a CPU buffer, and the row gather
 * that shuffles a dataset. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "device.h"

enum { READ_CHUNK = 1 << 30 };

static const struct {
  unsigned char code;
  lg_dtype dt;
} idx_types[] = {{0x08, LG_DT_UINT8},  {0x09, LG_DT_INT8},    {0x0B, LG_DT_INT16},
                 {0x0C, LG_DT_INT32},  {0x0D, LG_DT_FLOAT32}, {0x0E, LG_DT_FLOAT64}};

/* Read up to n bytes; the count read, or -1 with zlib's message in *err (without the path that
 * gzerror puts in front). */
static int64_t read_all(gzFile g, const char *path, void *dst, int64_t n, const char **err) {
  int64_t got = 0;
  while (got < n) {
    unsigned c = n - got < READ_CHUNK ? (unsigned)(n - got) : READ_CHUNK;
    int r = gzread(g, (char *)dst + got, c);
    if (r < 0) {
      int code;
      *err = gzerror(g, &code);
      size_t l = strlen(path);
      if (strncmp(*err, path, l) == 0 && strncmp(*err + l, ": ", 2) == 0) *err += l + 2;
      return -1;
    }
    if (r == 0) break;
    got += r;
  }
  return got;
}

static void swap_bytes(char *p, int64_t n, int32_t size) {
  if (size == 2) {
    for (int64_t i = 0; i < n; i++) {
      uint16_t v;
      memcpy(&v, p + 2 * i, 2);
      v = __builtin_bswap16(v);
      memcpy(p + 2 * i, &v, 2);
    }
  } else if (size == 4) {
    for (int64_t i = 0; i < n; i++) {
      uint32_t v;
      memcpy(&v, p + 4 * i, 4);
      v = __builtin_bswap32(v);
      memcpy(p + 4 * i, &v, 4);
    }
  } else if (size == 8) {
    for (int64_t i = 0; i < n; i++) {
      uint64_t v;
      memcpy(&v, p + 8 * i, 8);
      v = __builtin_bswap64(v);
      memcpy(p + 8 * i, &v, 8);
    }
  }
}

static lg_status idx_read(lg_ctx *ctx, const char *path, gzFile g, lg_buffer **out, lg_dtype *dtype, int32_t *ndim,
                          int64_t *dims) {
  const char *err = NULL;
  unsigned char m[4];
  int64_t got = read_all(g, path, m, 4, &err);
  if (got < 0) return lg_ctx_fail(ctx, LG_ERR_ARG, "idx %s: %s", path, err);
  if (got < 4)
    return lg_ctx_fail(ctx, LG_ERR_ARG, "idx %s: the file is %lld bytes, too short for the 4-byte magic", path, (long long)got);
  if (m[0] || m[1])
    return lg_ctx_fail(ctx, LG_ERR_ARG, "idx %s: bad magic %02x %02x %02x %02x (expected 00 00, a type code, the number of dims)",
                       path, m[0], m[1], m[2], m[3]);
  size_t k = 0;
  while (k < sizeof idx_types / sizeof idx_types[0] && idx_types[k].code != m[2]) k++;
  if (k == sizeof idx_types / sizeof idx_types[0])
    return lg_ctx_fail(ctx, LG_ERR_ARG,
                       "idx %s: unknown type code 0x%02X "
                       "(known: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64)",
                       path, m[2]);
  lg_dtype dt = idx_types[k].dt;
  int32_t nd = m[3], size = lg_dtype_itemsize(dt);
  if (nd > LG_MAX_DIMS) return lg_ctx_fail(ctx, LG_ERR_ARG, "idx %s: %d dims, at most %d", path, (int)nd, LG_MAX_DIMS);
  unsigned char raw[4 * LG_MAX_DIMS];
  got = read_all(g, path, raw, 4 * nd, &err);
  if (got < 0) return lg_ctx_fail(ctx, LG_ERR_ARG, "idx %s: %s", path, err);
  if (got < 4 * nd)
    return lg_ctx_fail(ctx, LG_ERR_ARG, "idx %s: truncated in the dims: %lld of %d bytes", path, (long long)got, 4 * nd);
  char shape[16 * 12] = "";
  int64_t nbytes = size;
  bool overflow = false;
  for (int32_t i = 0; i < nd; i++) {
    dims[i] = (int64_t)raw[4 * i] << 24 | (int64_t)raw[4 * i + 1] << 16 | (int64_t)raw[4 * i + 2] << 8 | raw[4 * i + 3];
    overflow = overflow || __builtin_mul_overflow(nbytes, dims[i], &nbytes);
    size_t l = strlen(shape);
    snprintf(shape + l, sizeof shape - l, "%s%lld", i ? "x" : "", (long long)dims[i]);
  }
  char dn[32];
  lg_dtype_name(dt, dn, sizeof dn);
  if (overflow) return lg_ctx_fail(ctx, LG_ERR_ARG, "idx %s: dims %s of %s overflow 64-bit sizes", path, shape, dn);
  lg_device *cpu;
  lg_buffer *buf;
  lg_status st = lg_device_get(ctx, "CPU", &cpu);
  if (st == LG_OK) st = lg_buffer_new(ctx, cpu, nbytes, &buf);
  if (st != LG_OK) return st;
  got = read_all(g, path, buf->mem, nbytes, &err);
  unsigned char extra;
  if (got < 0) st = lg_ctx_fail(ctx, LG_ERR_ARG, "idx %s: %s", path, err);
  else if (got < nbytes)
    st = lg_ctx_fail(ctx, LG_ERR_ARG, "idx %s: truncated data: %lld of %lld bytes (dims %s of %s)", path, (long long)got,
                     (long long)nbytes, shape, dn);
  else if ((got = read_all(g, path, &extra, 1, &err)) != 0)
    st = got < 0 ? lg_ctx_fail(ctx, LG_ERR_ARG, "idx %s: %s", path, err)
                 : lg_ctx_fail(ctx, LG_ERR_ARG, "idx %s: more bytes after the %lld of dims %s of %s", path, (long long)nbytes,
                               shape, dn);
  if (st != LG_OK) {
    lg_buffer_release(buf);
    return st;
  }
  swap_bytes(buf->mem, nbytes / size, size);
  *out = buf;
  *dtype = dt;
  *ndim = nd;
  return LG_OK;
}

lg_status lg_idx_load(lg_ctx *ctx, const char *path, lg_buffer **out, lg_dtype *dtype, int32_t *ndim, int64_t *dims) {
  *out = NULL;
  if (!path) return lg_ctx_fail(ctx, LG_ERR_ARG, "idx: no path");
  errno = 0;
  gzFile g = gzopen(path, "rb");
  if (!g) return lg_ctx_fail(ctx, LG_ERR_ARG, "idx %s: %s", path, errno ? strerror(errno) : "cannot open");
  lg_status st = idx_read(ctx, path, g, out, dtype, ndim, dims);
  gzclose(g);
  return st;
}

lg_status lg_gather_rows(lg_ctx *ctx, lg_buffer *src, int64_t row_bytes, const int64_t *idx, int64_t n, lg_buffer **out) {
  *out = NULL;
  lg_device *dev = src->dev;
  if (dev->ctx != ctx) return lg_ctx_fail(ctx, LG_ERR_ARG, "gather_rows: the buffer belongs to another context");
  if (dev->ops != &lg_cpu_device)
    return lg_ctx_fail(ctx, LG_ERR_ARG, "gather_rows: the buffer is on %s; rows are gathered in host memory (CPU)", dev->name);
  if (row_bytes < 1 || src->nbytes % row_bytes || n < 0 || (n && !idx))
    return lg_ctx_fail(ctx, LG_ERR_ARG, "gather_rows: rows of %lld bytes do not divide a buffer of %lld bytes (or %lld indices)",
                       (long long)row_bytes, (long long)src->nbytes, (long long)n);
  int64_t rows = src->nbytes / row_bytes, nbytes;
  for (int64_t i = 0; i < n; i++) {
    if (idx[i] < 0 || idx[i] >= rows)
      return lg_ctx_fail(ctx, LG_ERR_ARG, "gather_rows: index %lld (position %lld) is outside 0..%lld", (long long)idx[i],
                         (long long)i, (long long)rows - 1);
  }
  if (__builtin_mul_overflow(n, row_bytes, &nbytes))
    return lg_ctx_fail(ctx, LG_ERR_ARG, "gather_rows: %lld rows of %lld bytes overflow 64-bit sizes", (long long)n,
                       (long long)row_bytes);
  lg_status st = lg_buffer_new(ctx, dev, nbytes, out);
  if (st != LG_OK) return st;
  char *d = (*out)->mem;
  const char *s = src->mem;
  for (int64_t i = 0; i < n; i++) memcpy(d + i * row_bytes, s + idx[i] * row_bytes, (size_t)row_bytes);
  return LG_OK;
}
