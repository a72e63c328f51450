/* test_io.c: buffers over caller memory (lg_buffer_wrap), safetensors files (round trip, the
 * mapping's lifetime, zero-copy views of aligned data, every corrupt header this file can think of),
 * IDX files (raw and gzip) and the row gather. */
#include <ftw.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include "ctest.h"
#include "device.h"

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) { return remove(path); }

typedef struct tmpdir {
  char path[64];
} tmpdir;

static bool tmpdir_make(tmpdir *d) {
  snprintf(d->path, sizeof d->path, "/tmp/lg-io-XXXXXX");
  return mkdtemp(d->path) != NULL;
}

static void tmpdir_remove(tmpdir *d) { nftw(d->path, remove_entry, 8, FTW_DEPTH | FTW_PHYS); }

static void write_bytes(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return;
  fwrite(p, 1, n, f);
  fclose(f);
}

static void count_release(void *ud) { (*(int *)ud)++; }

CTEST(io_buffer_wrap) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_device *cpu;
  REQUIRE_OK(ctx, lg_device_get(ctx, "CPU", &cpu));
  float *mem = aligned_alloc(64, 64);
  REQUIRE(mem);
  for (int i = 0; i < 16; i++) mem[i] = (float)i;
  int releases = 0;
  lg_buffer *b = NULL;
  CHECK_INT(lg_buffer_wrap(ctx, cpu, (char *)mem + 4, 32, count_release, &releases, &b), LG_ERR_ARG);
  CHECK(strstr(lg_ctx_error(ctx), "buffer_wrap: needs 64-byte aligned memory") != NULL);
  CHECK_INT(lg_buffer_wrap(ctx, cpu, mem, 64, NULL, NULL, &b), LG_ERR_ARG);
  REQUIRE_OK(ctx, lg_buffer_wrap(ctx, cpu, mem, 64, count_release, &releases, &b));
  lg_device_stats s;
  lg_device_stats_get(cpu, &s);
  CHECK_INT(s.buffers, 1);
  float out[2];
  REQUIRE_OK(ctx, lg_buffer_read(b, 8 * 4, out, 8));
  CHECK(out[0] == 8.0f && out[1] == 9.0f);
  float v = 42.0f;
  REQUIRE_OK(ctx, lg_buffer_write(b, 0, &v, 4));
  CHECK(mem[0] == 42.0f);
  lg_buffer_retain(b);
  lg_buffer_release(b);
  CHECK_INT(releases, 0);
  lg_buffer_release(b);
  CHECK_INT(releases, 1);
  lg_device_stats_get(cpu, &s);
  CHECK_INT(s.buffers, 0);
  CHECK_INT(s.buffer_bytes, 0);
  /* a buffer the context frees at the end gives its memory back too */
  REQUIRE_OK(ctx, lg_buffer_wrap(ctx, cpu, mem, 64, count_release, &releases, &b));
  lg_ctx_free(ctx);
  CHECK_INT(releases, 2);
  free(mem);
}

static lg_buffer *buffer_of(ctest_run *ctest_r_, lg_ctx *ctx, const void *p, int64_t n) {
  lg_device *cpu;
  lg_buffer *b = NULL;
  if (lg_device_get(ctx, "CPU", &cpu) || lg_buffer_new(ctx, cpu, n, &b) || lg_buffer_write(b, 0, p, n)) {
    CHECK_MSG(0, "buffer: %s", lg_ctx_error(ctx));
    lg_buffer_release(b);
    return NULL;
  }
  return b;
}

CTEST(io_safetensors_round_trip) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  tmpdir d;
  REQUIRE(tmpdir_make(&d));
  char path[128];
  snprintf(path, sizeof path, "%s/w.safetensors", d.path);
  float w[6] = {1, 2, 3, 4, 5, 6.5f};
  uint8_t u[5] = {0, 1, 2, 254, 255};
  lg_buffer *bw = buffer_of(ctest_r_, ctx, w, sizeof w), *bu = buffer_of(ctest_r_, ctx, u, sizeof u);
  REQUIRE(bw && bu);
  int64_t sw[2] = {2, 3}, su[1] = {5};
  lg_tensor_entry es[2] = {{"u", LG_DT_UINT8, 1, su, bu}, {"w", LG_DT_FLOAT32, 2, sw, bw}};
  const char *keys[] = {"format"}, *values[] = {"pt"};
  REQUIRE_OK(ctx, lg_safetensors_save(ctx, path, es, 2, keys, values, 1));
  lg_buffer_release(bw);
  lg_buffer_release(bu);

  lg_safetensors *f;
  REQUIRE_OK(ctx, lg_safetensors_open(ctx, path, &f));
  CHECK_INT(lg_safetensors_count(f), 2);
  CHECK_INT(lg_safetensors_metadata_count(f), 1);
  const char *k, *v;
  lg_safetensors_metadata(f, 0, &k, &v);
  CHECK_STR(k, "format");
  CHECK_STR(v, "pt");
  lg_tensor_info a, b;
  lg_safetensors_info(f, 0, &a); /* data order: itemsize descending */
  lg_safetensors_info(f, 1, &b);
  CHECK_STR(a.name, "w");
  CHECK_STR(b.name, "u");
  CHECK_INT(a.dtype, LG_DT_FLOAT32);
  CHECK_INT(a.ndim, 2);
  CHECK(a.shape[0] == 2 && a.shape[1] == 3);
  CHECK_INT(a.offset % 64, 0);
  CHECK_INT(a.nbytes, 24);
  CHECK_INT(b.offset, a.offset + 24);
  lg_device *cpu;
  REQUIRE_OK(ctx, lg_device_get(ctx, "CPU", &cpu));
  lg_buffer *ba, *bb;
  REQUIRE_OK(ctx, lg_safetensors_buffer(ctx, f, 0, cpu, &ba));
  REQUIRE_OK(ctx, lg_safetensors_buffer(ctx, f, 1, cpu, &bb));
  lg_buffer *none;
  CHECK_INT(lg_safetensors_buffer(ctx, f, 2, cpu, &none), LG_ERR_ARG);
  CHECK(none == NULL);
  CHECK(ba->release != NULL); /* aligned: a view of the mapping */
  CHECK(bb->release == NULL); /* at byte 24 of the data: a copy */
  lg_safetensors_close(f);
  /* the file is replaced (a new file under its name, as lg_safetensors_save does) and the handle
   * closed: the view still reads the old bytes. (Truncating the file in place would not be safe.) */
  unlink(path);
  write_bytes(path, "x", 1);
  float wr[6];
  uint8_t ur[5];
  REQUIRE_OK(ctx, lg_buffer_read(ba, 0, wr, sizeof wr));
  REQUIRE_OK(ctx, lg_buffer_read(bb, 0, ur, sizeof ur));
  CHECK(memcmp(w, wr, sizeof w) == 0);
  CHECK(memcmp(u, ur, sizeof u) == 0);
  lg_buffer_release(ba);
  lg_buffer_release(bb);

  /* bad entries */
  lg_buffer *one = buffer_of(ctest_r_, ctx, w, 4);
  int64_t s1[1] = {1}, s2[1] = {2};
  lg_tensor_entry dup[2] = {{"a", LG_DT_FLOAT32, 1, s1, one}, {"a", LG_DT_FLOAT32, 1, s1, one}};
  CHECK_INT(lg_safetensors_save(ctx, path, dup, 2, NULL, NULL, 0), LG_ERR_ARG);
  CHECK(strstr(lg_ctx_error(ctx), "tensor 'a' appears twice") != NULL);
  lg_tensor_entry size[1] = {{"a", LG_DT_FLOAT32, 1, s2, one}};
  CHECK_INT(lg_safetensors_save(ctx, path, size, 1, NULL, NULL, 0), LG_ERR_ARG);
  CHECK(strstr(lg_ctx_error(ctx), "tensor 'a': shape (2) of float32 needs 8 bytes, its buffer holds 4") != NULL);
  lg_tensor_entry vd[1] = {{"a", lg_dtype_vec(LG_DT_FLOAT32, 4), 0, NULL, one}};
  CHECK_INT(lg_safetensors_save(ctx, path, vd, 1, NULL, NULL, 0), LG_ERR_ARG);
  CHECK(strstr(lg_ctx_error(ctx), "has dtype float32x4, which safetensors cannot hold") != NULL);
  const char *mk[] = {"k", "k"}, *mv[] = {"1", "2"};
  CHECK_INT(lg_safetensors_save(ctx, path, NULL, 0, mk, mv, 2), LG_ERR_ARG);
  CHECK(strstr(lg_ctx_error(ctx), "the metadata key 'k' appears twice") != NULL);
  lg_buffer_release(one);
  /* nothing at all is a valid file */
  REQUIRE_OK(ctx, lg_safetensors_save(ctx, path, NULL, 0, NULL, NULL, 0));
  REQUIRE_OK(ctx, lg_safetensors_open(ctx, path, &f));
  CHECK_INT(lg_safetensors_count(f), 0);
  lg_safetensors_close(f);
  tmpdir_remove(&d);
  lg_ctx_free(ctx);
}

typedef struct bad_file {
  const char *header;
  size_t data_len;
  uint64_t hlen; /* 0: the header's length */
  const char *want;
} bad_file;

CTEST(io_safetensors_corrupt) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  tmpdir d;
  REQUIRE(tmpdir_make(&d));
  char path[128];
  snprintf(path, sizeof path, "%s/bad.safetensors", d.path);
  char deep[3000] = "";
  memset(deep, '[', sizeof deep - 1);
  memcpy(deep, "{\"a\":", 5);
  const bad_file cases[] = {
      {"{}", 0, 1000, "header length 1000 is larger than the file allows (2 bytes after the length)"},
      {"{}", 0, UINT64_MAX, "header length 18446744073709551615 is over the limit of 100000000 bytes"},
      {"", 0, 0, "the header does not start with '{'"},
      {"   ", 0, 0, "the header does not start with '{'"},
      {"{\"a\":", 0, 0, "the header is not valid JSON"},
      {deep, 0, 0, "the header is not valid JSON"},
      {"{\"a\":\"\\", 0, 0, "the header is not valid JSON"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, 0, "data_offsets [0, 8] end beyond the data (4 bytes)"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[7,8]}}",
       8, 0, "tensors 'a' [0, 8] and 'b' [7, 8] overlap"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,1e300]}}", 8, 0, "\"data_offsets\" is [0,1e+300]"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",8]}}", 8, 0, "\"data_offsets\" is [\"0\",8]"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":null}}", 8, 0, "\"data_offsets\" is null"},
      {"{\"a\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, "unknown dtype 'f32'"},
      {"{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, "\"dtype\" is 7, expected a string"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, 0, "size 1 is 2.5, expected an integer >= 0"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0, "hold 8 bytes, but shape (3) of F32 needs 12"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,8]}}", 8, 0, "hold 8 bytes, but shape () of F32 needs 4"},
      {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, 0, "__metadata__ appears twice"},
      {"{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, 0, "__metadata__: the key 'k' appears twice"},
      {"{\"a\":1} x", 0, 0, "the header has more than one JSON value (at byte 7: \" x\")"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const bad_file *c = &cases[i];
    size_t hl = strlen(c->header), n = 8 + hl + c->data_len;
    char *bytes = calloc(1, n);
    REQUIRE(bytes);
    uint64_t len = c->hlen ? c->hlen : hl;
    memcpy(bytes, &len, 8);
    memcpy(bytes + 8, c->header, hl);
    write_bytes(path, bytes, n);
    free(bytes);
    lg_safetensors *f = NULL;
    lg_status st = lg_safetensors_open(ctx, path, &f);
    CHECK_MSG(st == LG_ERR_ARG && f == NULL, "case %zu: status %d", i, (int)st);
    CHECK_MSG(strstr(lg_ctx_error(ctx), c->want) && strstr(lg_ctx_error(ctx), path), "case %zu: %s\nexpected %s", i,
              lg_ctx_error(ctx), c->want);
    lg_safetensors_close(f);
  }
  tmpdir_remove(&d);
  lg_ctx_free(ctx);
}

/* an IDX file of the given type code, dims and big-endian payload, raw or gzip-compressed */
static void write_idx(const char *path, int gz, unsigned char code, int nd, const uint32_t *dims, const void *data,
                      size_t n) {
  unsigned char head[4 + 4 * 16] = {0, 0, code, (unsigned char)nd};
  for (int i = 0; i < nd; i++) {
    head[4 + 4 * i] = (unsigned char)(dims[i] >> 24), head[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
    head[6 + 4 * i] = (unsigned char)(dims[i] >> 8), head[7 + 4 * i] = (unsigned char)dims[i];
  }
  if (gz) {
    gzFile g = gzopen(path, "wb");
    if (!g) return;
    gzwrite(g, head, 4 + 4 * (unsigned)nd);
    if (n) gzwrite(g, data, (unsigned)n);
    gzclose(g);
  } else {
    char *all = malloc(4 + 4 * (size_t)nd + n + 1);
    if (!all) return;
    memcpy(all, head, 4 + 4 * (size_t)nd);
    if (n) memcpy(all + 4 + 4 * nd, data, n);
    write_bytes(path, all, 4 + 4 * (size_t)nd + n);
    free(all);
  }
}

CTEST(io_idx) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  tmpdir d;
  REQUIRE(tmpdir_make(&d));
  char path[128];
  snprintf(path, sizeof path, "%s/x.idx", d.path);
  /* int16 (2,2): -2, 300, 32767, -32768 big-endian; float64 (1): 1.5 */
  const unsigned char i16[] = {0xff, 0xfe, 0x01, 0x2c, 0x7f, 0xff, 0x80, 0x00};
  const unsigned char f64[] = {0x3f, 0xf8, 0, 0, 0, 0, 0, 0};
  const uint32_t d22[] = {2, 2}, d1[] = {1};
  for (int gz = 0; gz < 2; gz++) {
    write_idx(path, gz, 0x0B, 2, d22, i16, sizeof i16);
    lg_buffer *b = NULL;
    lg_dtype dt;
    int32_t nd;
    int64_t dims[16];
    REQUIRE_OK(ctx, lg_idx_load(ctx, path, &b, &dt, &nd, dims));
    CHECK_INT(dt, LG_DT_INT16);
    CHECK_INT(nd, 2);
    CHECK(dims[0] == 2 && dims[1] == 2);
    int16_t v[4];
    REQUIRE_OK(ctx, lg_buffer_read(b, 0, v, sizeof v));
    CHECK(v[0] == -2 && v[1] == 300 && v[2] == 32767 && v[3] == -32768);
    lg_buffer_release(b);
    write_idx(path, gz, 0x0E, 1, d1, f64, sizeof f64);
    REQUIRE_OK(ctx, lg_idx_load(ctx, path, &b, &dt, &nd, dims));
    double x;
    REQUIRE_OK(ctx, lg_buffer_read(b, 0, &x, 8));
    CHECK(dt == LG_DT_FLOAT64 && x == 1.5);
    lg_buffer_release(b);
    /* errors */
    const uint32_t big[] = {0xffffffffu, 0xffffffffu, 0xffffffffu};
    write_idx(path, gz, 0x08, 3, big, NULL, 0);
    CHECK_INT(lg_idx_load(ctx, path, &b, &dt, &nd, dims), LG_ERR_ARG);
    CHECK(strstr(lg_ctx_error(ctx), "dims 4294967295x4294967295x4294967295 of uint8 overflow 64-bit sizes"));
    write_idx(path, gz, 0x07, 1, d1, f64, 1);
    CHECK_INT(lg_idx_load(ctx, path, &b, &dt, &nd, dims), LG_ERR_ARG);
    CHECK(strstr(lg_ctx_error(ctx), "unknown type code 0x07"));
    write_idx(path, gz, 0x0E, 2, d22, f64, sizeof f64);
    CHECK_INT(lg_idx_load(ctx, path, &b, &dt, &nd, dims), LG_ERR_ARG);
    CHECK(strstr(lg_ctx_error(ctx), "truncated data: 8 of 32 bytes (dims 2x2 of float64)"));
    CHECK(b == NULL);
  }
  CHECK_INT(lg_idx_load(ctx, "/nonexistent/x.idx", &(lg_buffer *){NULL}, &(lg_dtype){0}, &(int32_t){0}, (int64_t[16]){0}),
            LG_ERR_ARG);
  tmpdir_remove(&d);
  lg_ctx_free(ctx);
}

CTEST(io_gather_rows) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  int32_t v[6] = {10, 11, 20, 21, 30, 31};
  lg_buffer *src = buffer_of(ctest_r_, ctx, v, sizeof v), *out = NULL;
  REQUIRE(src);
  const int64_t idx[4] = {2, 0, 2, 1};
  REQUIRE_OK(ctx, lg_gather_rows(ctx, src, 8, idx, 4, &out));
  int32_t r[8];
  REQUIRE_OK(ctx, lg_buffer_read(out, 0, r, sizeof r));
  const int32_t want[8] = {30, 31, 10, 11, 30, 31, 20, 21};
  CHECK(memcmp(r, want, sizeof r) == 0);
  lg_buffer_release(out);
  const int64_t bad[2] = {0, 3};
  CHECK_INT(lg_gather_rows(ctx, src, 8, bad, 2, &out), LG_ERR_ARG);
  CHECK(strstr(lg_ctx_error(ctx), "index 3 (position 1) is outside 0..2"));
  CHECK_INT(lg_gather_rows(ctx, src, 5, idx, 1, &out), LG_ERR_ARG);
  CHECK(out == NULL);
  lg_buffer_release(src);
  lg_ctx_free(ctx);
}
