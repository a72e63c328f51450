/* test_codegen.c: the linearizer (core/linearize.c) and the C renderer (devices/cpu/render_c.c):
 * kernel graphs built by hand, rendered, compiled on the CPU device and run against plain C
 * loops; every ALU op, CAST, BITCAST and literal kind against core/alu.c's folding; the text of
 * two kernels exactly; errors for graphs that break docs/kernel_ir.md. Nine compiler runs in
 * all, each test in a private CACHE_DIR. */
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "ctest.h"
#include "linearize.h"

/* ---- building graphs: every node made is held by the kg and released with it ------------------ */

typedef struct kg {
  lg_ctx *ctx;
  lg_uop **held;
  int n, cap;
  bool bad; /* a node could not be made (its message is on ctx) */
} kg;

static lg_uop *node(kg *g, int32_t op, lg_dtype dt, const lg_arg *arg, int n, ...) {
  lg_uop *src[64], *u = NULL;
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) src[i] = va_arg(ap, lg_uop *);
  va_end(ap);
  if (g->n == g->cap) {
    lg_uop **h = realloc(g->held, (size_t)(g->cap ? 2 * g->cap : 256) * sizeof *h);
    if (h) g->held = h, g->cap = g->cap ? 2 * g->cap : 256;
  }
  if (g->n == g->cap || lg_uop_new(g->ctx, op, dt, src, n, arg, &u) != LG_OK) {
    g->bad = true;
    return NULL;
  }
  return g->held[g->n++] = u;
}

static lg_uop *ci(kg *g, lg_dtype dt, int64_t v) {
  return node(g, LG_OP_CONST, dt, &(lg_arg){.kind = LG_ARG_INT, .i = v}, 0);
}
static lg_uop *cf(kg *g, lg_dtype dt, double v) {
  return node(g, LG_OP_CONST, dt, &(lg_arg){.kind = LG_ARG_FLOAT, .f = v}, 0);
}

static lg_uop *buf(kg *g, lg_dtype dt, int64_t slot) {
  return node(g, LG_OP_DEFINE_GLOBAL, lg_dtype_ptr(dt, LG_ADDR_GLOBAL), &(lg_arg){.kind = LG_ARG_INT, .i = slot}, 0);
}

static lg_uop *rng_to(kg *g, lg_uop *end, int64_t axis, int64_t kind) {
  int64_t a[2] = {axis, kind};
  return node(g, LG_OP_RANGE, LG_DT_INT32, &(lg_arg){.kind = LG_ARG_INTS, .n = 2, .ints = a}, 1, end);
}

static lg_uop *rng(kg *g, int64_t size, int64_t axis, int64_t kind) {
  return rng_to(g, ci(g, LG_DT_INT32, size), axis, kind);
}

static lg_uop *var(kg *g, const char *name, int64_t lo, int64_t hi) {
  int64_t a[2] = {lo, hi};
  return node(g, LG_OP_DEFINE_VAR, LG_DT_INT32, &(lg_arg){.kind = LG_ARG_STR_INTS, .n = 2, .s = name, .ints = a}, 0);
}

static lg_dtype elem(lg_uop *b) { return b ? lg_dtype_base(lg_uop_dtype(b)) : LG_DT_VOID; }
static lg_dtype dtype_of(lg_uop *u) { return u ? lg_uop_dtype(u) : LG_DT_VOID; }

static lg_uop *idx(kg *g, lg_uop *b, lg_uop *i) { return node(g, LG_OP_INDEX, dtype_of(b), NULL, 2, b, i); }
static lg_uop *ld(kg *g, lg_uop *b, lg_uop *i) { return node(g, LG_OP_LOAD, elem(b), NULL, 1, idx(g, b, i)); }
static lg_uop *st(kg *g, lg_uop *b, lg_uop *i, lg_uop *v) {
  return node(g, LG_OP_STORE, LG_DT_VOID, NULL, 2, idx(g, b, i), v);
}

static lg_uop *gidx(kg *g, lg_uop *b, lg_uop *i, lg_uop *gate) {
  return node(g, LG_OP_INDEX, dtype_of(b), NULL, 3, b, i, gate);
}

static lg_uop *bin(kg *g, int32_t op, lg_uop *a, lg_uop *b) {
  return node(g, op, lg_op_flags(op) & LG_OPF_CMP ? LG_DT_BOOL : dtype_of(a), NULL, 2, a, b);
}

static lg_uop *un(kg *g, int32_t op, lg_dtype dt, lg_uop *a) { return node(g, op, dt, NULL, 1, a); }

static lg_uop *red(kg *g, const char *op, lg_uop *v, lg_uop *r) {
  return node(g, LG_OP_REDUCE, dtype_of(v), &(lg_arg){.kind = LG_ARG_STR, .s = op}, 2, v, r);
}

static lg_uop *end(kg *g, lg_uop *x, lg_uop *r) { return node(g, LG_OP_END, LG_DT_VOID, NULL, 2, x, r); }

static void kg_free(kg *g) {
  for (int i = 0; i < g->n; i++) lg_uop_release(g->held[i]);
  free(g->held);
  *g = (kg){.ctx = g->ctx};
}

/* ---- a context with the CPU device and a private cache folder ---------------------------------- */

typedef struct fx {
  char dir[32];
  char *old_cache;
  lg_ctx *ctx;
  lg_device *dev;
  kg g;
} fx;

static bool fx_open(fx *f) {
  *f = (fx){0};
  strcpy(f->dir, "/tmp/lg_codegen_XXXXXX");
  const char *old = getenv("CACHE_DIR");
  f->old_cache = old ? strdup(old) : NULL;
  if (!mkdtemp(f->dir) || setenv("CACHE_DIR", f->dir, 1) || lg_ctx_new(&f->ctx)) return false;
  f->g.ctx = f->ctx;
  return lg_device_get(f->ctx, "CPU", &f->dev) == LG_OK;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) { return remove(path); }

static void fx_close(fx *f) {
  kg_free(&f->g);
  lg_ctx_free(f->ctx);
  nftw(f->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
  if (f->old_cache)
    setenv("CACHE_DIR", f->old_cache, 1);
  else
    unsetenv("CACHE_DIR");
  free(f->old_cache);
}

/* Render and compile; *text gets the source (free with lg_free) when text is not NULL. */
static lg_program *build_kernel(ctest_run *ctest_r_, fx *f, lg_uop *sink, const char *name, char **text) {
  char *src = NULL;
  lg_program *p = NULL;
  CHECK_MSG(!f->g.bad, "building the graph: %s", lg_ctx_error(f->ctx));
  lg_status st = lg_render_c(f->ctx, sink, name, &src);
  CHECK_MSG(st == LG_OK, "render: %s", lg_ctx_error(f->ctx));
  if (src) {
    st = lg_program_compile(f->ctx, f->dev, src, name, &p);
    CHECK_MSG(st == LG_OK, "compile: %s\n%s", lg_ctx_error(f->ctx), src);
  }
  if (text)
    *text = src;
  else
    lg_free(src);
  return p;
}

/* Launch on buffers filled from host memory (bytes[i] bytes at data[i]) and read them all back. */
static bool run(fx *f, lg_program *p, int n, void **data, const int64_t *bytes, const int64_t *ints, int nints) {
  lg_buffer *b[32] = {0};
  bool ok = p && n <= 32;
  for (int i = 0; i < n && ok; i++)
    ok =
        lg_buffer_new(f->ctx, f->dev, bytes[i], &b[i]) == LG_OK && lg_buffer_write(b[i], 0, data[i], bytes[i]) == LG_OK;
  ok = ok && lg_program_launch(f->ctx, p, b, n, ints, nints, NULL) == LG_OK;
  for (int i = 0; i < n && ok; i++) ok = lg_buffer_read(b[i], 0, data[i], bytes[i]) == LG_OK;
  for (int i = 0; i < n; i++) lg_buffer_release(b[i]);
  return ok;
}

/* ---- (a) elementwise, with its text pinned ----------------------------------------------------- */

static const char elementwise_text[] =
    "#include <stdint.h>\n"
    "#include <math.h>\n"
    "\n"
    "/* for the launcher: the split loop's iterations, the work of one */\n"
    "const int64_t E_1000_split[2] = {1000, 5};\n"
    "\n"
    "void E_1000(void **bufs, const int64_t *ints, int32_t core_id, int32_t ncores) {\n"
    "  float *restrict data0 = (float *)bufs[0];\n"
    "  const float *restrict data1 = (const float *)bufs[1];\n"
    "  const float *restrict data2 = (const float *)bufs[2];\n"
    "  /* ridx0 is split over the cores: this one runs [start, end) */\n"
    "  const int32_t start = (int64_t)1000 * core_id / ncores, end = (int64_t)1000 * (core_id + 1) / ncores;\n"
    "  for (int32_t ridx0 = start; ridx0 < end; ridx0++) {\n"
    "    float val0 = data1[ridx0];\n"
    "    float val1 = data2[ridx0];\n"
    "    data0[ridx0] = val0 * val1 + 1.0f;\n"
    "  }\n"
    "}\n";

CTEST(codegen_elementwise) {
  fx f;
  REQUIRE(fx_open(&f));
  kg *g = &f.g;
  lg_uop *d0 = buf(g, LG_DT_FLOAT32, 0), *d1 = buf(g, LG_DT_FLOAT32, 1), *d2 = buf(g, LG_DT_FLOAT32, 2);
  lg_uop *r = rng(g, 1000, 0, 0);
  lg_uop *v = bin(g, LG_OP_ADD, bin(g, LG_OP_MUL, ld(g, d1, r), ld(g, d2, r)), cf(g, LG_DT_FLOAT32, 1.0));
  lg_uop *sink = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 1, end(g, st(g, d0, r, v), r));
  char *text = NULL;
  lg_program *p = build_kernel(ctest_r_, &f, sink, "E_1000", &text);
  CHECK_STR(text, elementwise_text);
  static float a[1000], b[1000], c[1000];
  for (int i = 0; i < 1000; i++) a[i] = (float)i * 0.25f - 100.0f, b[i] = 1.0f / (float)(i + 1), c[i] = NAN;
  void *data[3] = {c, a, b};
  int64_t bytes[3] = {sizeof c, sizeof a, sizeof b};
  CHECK(run(&f, p, 3, data, bytes, NULL, 0));
  int bad = 0;
  for (int i = 0; i < 1000; i++) {
    float prod = a[i] * b[i];
    bad += c[i] != prod + 1.0f;
  }
  CHECK_INT(bad, 0);
  lg_free(text);
  lg_program_release(p);
  fx_close(&f);
}

/* ---- (b) a row sum, with its text pinned; (c) a max reduce over NaN, -inf and signed zeros ------- */

static const char rowsum_text[] = "#include <stdint.h>\n"
                                  "#include <math.h>\n"
                                  "\n"
                                  "/* for the launcher: the split loop's iterations, the work of one */\n"
                                  "const int64_t r_16_37_split[2] = {16, 113};\n"
                                  "\n"
                                  "void r_16_37(void **bufs, const int64_t *ints, int32_t core_id, int32_t ncores) {\n"
                                  "  float *restrict data0 = (float *)bufs[0];\n"
                                  "  const float *restrict data1 = (const float *)bufs[1];\n"
                                  "  /* ridx0 is split over the cores: this one runs [start, end) */\n"
                                  "  const int32_t start = (int64_t)16 * core_id / ncores, end = (int64_t)16 * (core_id + 1) / ncores;\n"
                                  "  for (int32_t ridx0 = start; ridx0 < end; ridx0++) {\n"
                                  "    float acc0 = 0.0f;\n"
                                  "    for (int32_t ridx1 = 0; ridx1 < 37; ridx1++) {\n"
                                  "      float val0 = data1[ridx0 * 37 + ridx1];\n"
                                  "      acc0 = acc0 + val0;\n"
                                  "    }\n"
                                  "    data0[ridx0] = acc0;\n"
                                  "  }\n"
                                  "}\n";

/* out[i] = op over j of in[i * K + j], N rows */
static lg_uop *row_reduce(kg *g, lg_dtype dt, const char *op, int64_t n, int64_t k) {
  lg_uop *d0 = buf(g, dt, 0), *d1 = buf(g, dt, 1), *i = rng(g, n, 0, 0), *j = rng(g, k, 1, 1);
  lg_uop *at = bin(g, LG_OP_ADD, bin(g, LG_OP_MUL, i, ci(g, LG_DT_INT32, k)), j);
  return node(g, LG_OP_SINK, LG_DT_VOID, NULL, 1, end(g, st(g, d0, i, red(g, op, ld(g, d1, at), j)), i));
}

CTEST(codegen_row_sum) {
  fx f;
  REQUIRE(fx_open(&f));
  char *text = NULL;
  lg_program *p = build_kernel(ctest_r_, &f, row_reduce(&f.g, LG_DT_FLOAT32, "ADD", 16, 37), "r_16_37", &text);
  CHECK_STR(text, rowsum_text);
  float a[16 * 37], out[16];
  for (int i = 0; i < 16 * 37; i++) a[i] = (float)((i * 7919) % 1000) / 7.0f - 50.0f;
  void *data[2] = {out, a};
  int64_t bytes[2] = {sizeof out, sizeof a};
  CHECK(run(&f, p, 2, data, bytes, NULL, 0));
  for (int i = 0; i < 16; i++) {
    float acc = 0.0f;
    for (int j = 0; j < 37; j++) acc += a[i * 37 + j];
    CHECK_MSG(out[i] == acc, "row %d: %g, expected %g", i, out[i], acc);
  }
  lg_free(text);
  lg_program_release(p);
  fx_close(&f);
}

CTEST(codegen_max_reduce) {
  fx f;
  REQUIRE(fx_open(&f));
  char *text = NULL;
  lg_program *p = build_kernel(ctest_r_, &f, row_reduce(&f.g, LG_DT_FLOAT32, "MAX", 6, 4), "r_max", &text);
  CHECK(text && strstr(text, "float acc0 = -INFINITY;") && strstr(text, "acc0 = max_f32(acc0, val0);"));
  float a[6][4] = {{1, 5, -2, 3},
                   {NAN, 1, 2, 3},
                   {1, 2, NAN, -INFINITY},
                   {-INFINITY, -INFINITY, -INFINITY, -INFINITY},
                   {-0.0f, 0.0f, -0.0f, -1},
                   {-0.0f, -0.0f, -3, -INFINITY}};
  float out[6];
  void *data[2] = {out, a};
  int64_t bytes[2] = {sizeof out, sizeof a};
  CHECK(run(&f, p, 2, data, bytes, NULL, 0));
  CHECK(out[0] == 5.0f);
  CHECK(isnan(out[1]) && isnan(out[2]));
  CHECK(isinf(out[3]) && out[3] < 0);
  CHECK(out[4] == 0.0f && !signbit(out[4]));
  CHECK(out[5] == 0.0f && signbit(out[5]));
  lg_free(text);
  lg_program_release(p);
  fx_close(&f);
}

/* ---- (d) a gated load (padding) and a gated store, in two loops side by side ------------------- */

CTEST(codegen_gated) {
  fx f;
  REQUIRE(fx_open(&f));
  kg *g = &f.g;
  enum { N = 10 };
  lg_uop *d0 = buf(g, LG_DT_FLOAT32, 0), *d1 = buf(g, LG_DT_FLOAT32, 1), *d2 = buf(g, LG_DT_FLOAT32, 2);
  lg_uop *i = rng(g, N + 3, 0, 0), *j = rng(g, N, 1, 0), *c3 = ci(g, LG_DT_INT32, 3);
  /* out[i] = (i < 3 ? 0 : a[i - 3]) + (i < N ? a[i] : -1) */
  lg_uop *pad = node(g, LG_OP_LOAD, LG_DT_FLOAT32, NULL, 1,
                     gidx(g, d1, bin(g, LG_OP_SUB, i, c3), bin(g, LG_OP_CMPLT, ci(g, LG_DT_INT32, 2), i)));
  lg_uop *alt = node(g, LG_OP_LOAD, LG_DT_FLOAT32, NULL, 2,
                     gidx(g, d1, i, bin(g, LG_OP_CMPLT, i, ci(g, LG_DT_INT32, N))), cf(g, LG_DT_FLOAT32, -1.0));
  lg_uop *e1 = end(g, st(g, d0, i, bin(g, LG_OP_ADD, pad, alt)), i);
  /* out2[j] = a[j] * 2 where j is even */
  lg_uop *even = bin(g, LG_OP_CMPEQ, bin(g, LG_OP_MOD, j, ci(g, LG_DT_INT32, 2)), ci(g, LG_DT_INT32, 0));
  lg_uop *s2 = node(g, LG_OP_STORE, LG_DT_VOID, NULL, 2, gidx(g, d2, j, even),
                    bin(g, LG_OP_MUL, ld(g, d1, j), cf(g, LG_DT_FLOAT32, 2.0)));
  lg_uop *sink = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 2, e1, end(g, s2, j));
  char *text = NULL;
  lg_program *p = build_kernel(ctest_r_, &f, sink, "gated", &text);
  CHECK_MSG(text && strstr(text, "    float val0 = 2 < ridx0 ? data1[ridx0 - 3] : 0.0f;\n") &&
                strstr(text, "    float val1 = ridx0 < 10 ? data1[ridx0] : -1.0f;\n") &&
                strstr(text, "  }\n  for (int32_t ridx1 = 0; ridx1 < 10; ridx1++) {\n") &&
                strstr(text, "    if (ridx1 % 2 == 0) data2[ridx1] = val2 * 2.0f;\n"),
            "%s", text);
  float a[N], out[N + 3], out2[N];
  for (int k = 0; k < N; k++) a[k] = (float)k + 0.5f, out2[k] = -7.0f;
  void *data[3] = {out, a, out2};
  int64_t bytes[3] = {sizeof out, sizeof a, sizeof out2};
  CHECK(run(&f, p, 3, data, bytes, NULL, 0));
  for (int k = 0; k < N + 3; k++)
    CHECK_MSG(out[k] == (k < 3 ? 0.0f : a[k - 3]) + (k < N ? a[k] : -1.0f), "out[%d] = %g", k, out[k]);
  for (int k = 0; k < N; k++) CHECK_MSG(out2[k] == (k % 2 ? -7.0f : a[k] * 2.0f), "out2[%d] = %g", k, out2[k]);
  lg_free(text);
  lg_program_release(p);
  fx_close(&f);
}

/* ---- (e) int8 wrap-around; int32 IDIV and MOD of negative values, by 0 and -1; an int32 max -------- */

CTEST(codegen_integers) {
  fx f;
  REQUIRE(fx_open(&f));
  kg *g = &f.g;
  enum { N = 8 };
  lg_uop *o8 = buf(g, LG_DT_INT8, 0), *a8 = buf(g, LG_DT_INT8, 1), *b8 = buf(g, LG_DT_INT8, 2);
  lg_uop *q = buf(g, LG_DT_INT32, 3), *m = buf(g, LG_DT_INT32, 4), *x = buf(g, LG_DT_INT32, 5),
         *y = buf(g, LG_DT_INT32, 6);
  lg_uop *i = rng(g, N, 0, 0), *va = ld(g, a8, i), *vx = ld(g, x, i), *vy = ld(g, y, i);
  lg_uop *s0 = st(g, o8, i, bin(g, LG_OP_ADD, bin(g, LG_OP_MUL, va, ld(g, b8, i)), va));
  lg_uop *s1 =
      st(g, q, i, bin(g, LG_OP_ADD, bin(g, LG_OP_IDIV, vx, vy), bin(g, LG_OP_IDIV, vx, ci(g, LG_DT_INT32, -3))));
  lg_uop *s2 = st(g, m, i, bin(g, LG_OP_MOD, vx, vy));
  lg_uop *grp = node(g, LG_OP_GROUP, LG_DT_VOID, NULL, 3, s0, s1, s2);
  lg_uop *j = rng(g, N, 1, 1), *mx = buf(g, LG_DT_INT32, 7);
  lg_uop *top = st(g, mx, ci(g, LG_DT_INT32, 0), red(g, "MAX", ld(g, x, j), j));
  char *text = NULL;
  lg_uop *sink = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 2, end(g, grp, i), top);
  lg_program *p = build_kernel(ctest_r_, &f, sink, "ints", &text);
  CHECK_MSG(text && strstr(text, "data0[ridx0] = (int8_t)((int8_t)(val0 * val1) + val0);") &&
                strstr(text, "(int32_t)((uint32_t)idiv_i32(val2, val3) + (uint32_t)(val2 / -3))") &&
                strstr(text, "data4[ridx0] = mod_i32(val2, val3);") && strstr(text, "int32_t acc0 = INT32_MIN;") &&
                strstr(text, "acc0 = max_i32(acc0, val4);"),
            "%s", text);
  int8_t a[N] = {100, -128, 127, -1, 0, 50, -50, 77}, b[N] = {100, -1, 2, -1, 5, 3, 3, -77}, o[N];
  int32_t xs[N] = {7, -7, 7, -7, INT32_MIN, INT32_MIN, 5, 0}, ys[N] = {2, 2, -2, -2, -1, 1, 0, 0}, qs[N], ms[N], top1;
  void *data[8] = {o, a, b, qs, ms, xs, ys, &top1};
  int64_t bytes[8] = {N, N, N, sizeof qs, sizeof ms, sizeof xs, sizeof ys, sizeof top1};
  CHECK(run(&f, p, 8, data, bytes, NULL, 0));
  CHECK_INT(top1, 7);
  for (int k = 0; k < N; k++) {
    int32_t div = ys[k] == 0 ? 0 : ys[k] == -1 ? (int32_t)(0u - (uint32_t)xs[k]) : xs[k] / ys[k];
    int32_t mod = ys[k] == 0 || ys[k] == -1 ? 0 : xs[k] % ys[k];
    CHECK_MSG(o[k] == (int8_t)((int8_t)(a[k] * b[k]) + a[k]), "o[%d] = %d", k, o[k]);
    CHECK_MSG(qs[k] == (int32_t)((uint32_t)div + (uint32_t)(xs[k] / -3)), "q[%d] = %d", k, qs[k]);
    CHECK_MSG(ms[k] == mod, "m[%d] = %d, expected %d", k, ms[k], mod);
  }
  lg_free(text);
  lg_program_release(p);
  fx_close(&f);
}

/* ---- (f) float16 and bfloat16: each operation rounds, as the folding does ----------------------- */

/* the 16 bits of a float16 or bfloat16 value, and back, by folding BITCASTs */
static uint16_t bits16(kg *g, lg_dtype dt, double v) {
  lg_uop *u = NULL;
  lg_uop_fold(g->ctx, un(g, LG_OP_BITCAST, LG_DT_INT16, cf(g, dt, v)), &u);
  uint16_t b = u ? (uint16_t)lg_uop_arg(u)->i : 0;
  lg_uop_release(u);
  return b;
}

static double from_bits16(kg *g, lg_dtype dt, uint16_t b) {
  lg_uop *u = NULL;
  lg_uop_fold(g->ctx, un(g, LG_OP_BITCAST, dt, ci(g, LG_DT_INT16, (int16_t)b)), &u);
  double v = u ? lg_uop_arg(u)->f : NAN;
  lg_uop_release(u);
  return v;
}

CTEST(codegen_half_floats) {
  fx f;
  REQUIRE(fx_open(&f));
  kg *g = &f.g;
  enum { N = 64 };
  lg_dtype dts[2] = {LG_DT_FLOAT16, LG_DT_BFLOAT16};
  lg_uop *i = rng(g, N, 0, 0), *j = rng(g, N, 1, 1), *stores[2];
  for (int t = 0; t < 2; t++) { /* out[i] = x[i] * w[i] + 0.1 */
    lg_uop *o = buf(g, dts[t], 3 * t), *x = buf(g, dts[t], 3 * t + 1), *w = buf(g, dts[t], 3 * t + 2);
    stores[t] = st(g, o, i, bin(g, LG_OP_ADD, bin(g, LG_OP_MUL, ld(g, x, i), ld(g, w, i)), cf(g, dts[t], 0.1)));
  }
  /* total[0] = the bfloat16 sum of x */
  lg_uop *total =
      st(g, buf(g, LG_DT_BFLOAT16, 6), ci(g, LG_DT_INT32, 0), red(g, "ADD", ld(g, buf(g, LG_DT_BFLOAT16, 4), j), j));
  lg_uop *sink = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 2,
                      end(g, node(g, LG_OP_GROUP, LG_DT_VOID, NULL, 2, stores[0], stores[1]), i), total);
  char *text = NULL;
  lg_program *p = build_kernel(ctest_r_, &f, sink, "halves", &text);
  CHECK_MSG(text && strstr(text, "data0[ridx0] = (_Float16)((_Float16)(val0 * val1) + (_Float16)0.099975586f);") &&
                strstr(text, "data3[ridx0] = float_to_bf16(bf16_round(bf16_round(val2 * val3) + 0.100097656f));") &&
                strstr(text, "acc0 = bf16_round(acc0 + val4);"),
            "%s", text);
  uint16_t mem[7][N] = {{0}};
  double x[2][N], w[2][N];
  for (int t = 0; t < 2; t++)
    for (int k = 0; k < N; k++) {
      x[t][k] = from_bits16(g, dts[t], bits16(g, dts[t], sin(k * 0.7 + t) * 3.0));
      w[t][k] = from_bits16(g, dts[t], bits16(g, dts[t], cos(k * 1.3) * 5.0 + 0.01));
      mem[3 * t + 1][k] = bits16(g, dts[t], x[t][k]), mem[3 * t + 2][k] = bits16(g, dts[t], w[t][k]);
    }
  void *data[7];
  int64_t bytes[7];
  for (int k = 0; k < 7; k++) data[k] = mem[k], bytes[k] = sizeof mem[k];
  bytes[6] = 2;
  CHECK(run(&f, p, 7, data, bytes, NULL, 0));
  for (int t = 0; t < 2; t++)
    for (int k = 0; k < N; k++) {
      double want = lg_round_float(dts[t], lg_round_float(dts[t], x[t][k] * w[t][k]) + lg_round_float(dts[t], 0.1));
      double got = from_bits16(g, dts[t], mem[3 * t][k]);
      CHECK_MSG(got == want, "dtype %d, out[%d] = %.9g, expected %.9g", t, k, got, want);
    }
  double sum = 0.0;
  for (int k = 0; k < N; k++) sum = lg_round_float(LG_DT_BFLOAT16, sum + x[1][k]);
  CHECK_MSG(from_bits16(g, LG_DT_BFLOAT16, mem[6][0]) == sum, "sum %.9g, expected %.9g",
            from_bits16(g, LG_DT_BFLOAT16, mem[6][0]), sum);
  lg_free(text);
  lg_program_release(p);
  fx_close(&f);
}

/* ---- (g) a loop to a DEFINE_VAR; ints come in the order of the variables' names ----------------- */

CTEST(codegen_define_var) {
  fx f;
  REQUIRE(fx_open(&f));
  kg *g = &f.g;
  lg_uop *n = var(g, "n", 1, 100), *start = var(g, "start", 0, 100), *i = rng_to(g, n, 0, 0);
  lg_uop *v =
      bin(g, LG_OP_ADD, ld(g, buf(g, LG_DT_FLOAT32, 1), bin(g, LG_OP_ADD, i, start)), cf(g, LG_DT_FLOAT32, 1.0));
  lg_uop *sink = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 1, end(g, st(g, buf(g, LG_DT_FLOAT32, 0), i, v), i));
  char *text = NULL;
  lg_program *p = build_kernel(ctest_r_, &f, sink, "var_loop", &text);
  CHECK_MSG(
      text &&
          strstr(text, "  const int32_t var_n = (int32_t)ints[0];\n  const int32_t var_start = (int32_t)ints[1];\n") &&
          strstr(text, "start = (int64_t)var_n * core_id / ncores, end = (int64_t)var_n * (core_id + 1) / ncores;") && strstr(text, "data1[ridx0 + var_start]"),
      "%s", text);
  float a[200], out[100];
  for (int k = 0; k < 200; k++) a[k] = (float)k * 3.0f;
  int64_t runs[2][2] = {{5, 2}, {100, 0}};
  for (int r = 0; r < 2; r++) {
    for (int k = 0; k < 100; k++) out[k] = -1.0f;
    void *data[2] = {out, a};
    int64_t bytes[2] = {sizeof out, sizeof a};
    CHECK(run(&f, p, 2, data, bytes, runs[r], 2));
    for (int k = 0; k < 100; k++)
      CHECK_MSG(out[k] == (k < runs[r][0] ? a[k + runs[r][1]] + 1.0f : -1.0f), "run %d: out[%d] = %g", r, k, out[k]);
  }
  lg_free(text);
  lg_program_release(p);
  fx_close(&f);
}

/* ---- (h) three nested loops reading a permuted (transposed) input ------------------------------ */

CTEST(codegen_transpose) {
  fx f;
  REQUIRE(fx_open(&f));
  kg *g = &f.g;
  enum { A = 3, B = 4, C = 5 };
  lg_uop *i = rng(g, A, 0, 0), *j = rng(g, B, 1, 0), *k = rng(g, C, 2, 0);
  lg_uop *cA = ci(g, LG_DT_INT32, A), *cB = ci(g, LG_DT_INT32, B), *cC = ci(g, LG_DT_INT32, C);
  /* out[(i*B + j)*C + k] = in[(k*B + j)*A + i] */
  lg_uop *o = bin(g, LG_OP_ADD, bin(g, LG_OP_MUL, bin(g, LG_OP_ADD, bin(g, LG_OP_MUL, i, cB), j), cC), k);
  lg_uop *a = bin(g, LG_OP_ADD, bin(g, LG_OP_MUL, bin(g, LG_OP_ADD, bin(g, LG_OP_MUL, k, cB), j), cA), i);
  lg_uop *s = st(g, buf(g, LG_DT_FLOAT32, 0), o, ld(g, buf(g, LG_DT_FLOAT32, 1), a));
  lg_uop *sink = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 1, node(g, LG_OP_END, LG_DT_VOID, NULL, 4, s, i, j, k));
  char *text = NULL;
  lg_program *p = build_kernel(ctest_r_, &f, sink, "transpose", &text);
  CHECK_MSG(text && strstr(text, "      for (int32_t ridx2 = 0; ridx2 < 5; ridx2++) {\n"
                                 "        float val0 = data1[(ridx2 * 4 + ridx1) * 3 + ridx0];\n"
                                 "        data0[(ridx0 * 4 + ridx1) * 5 + ridx2] = val0;\n"),
            "%s", text);
  float in[A * B * C], out[A * B * C];
  for (int e = 0; e < A * B * C; e++) in[e] = (float)e, out[e] = -1.0f;
  void *data[2] = {out, in};
  int64_t bytes[2] = {sizeof out, sizeof in};
  CHECK(run(&f, p, 2, data, bytes, NULL, 0));
  for (int x = 0; x < A; x++)
    for (int y = 0; y < B; y++)
      for (int z = 0; z < C; z++) CHECK(out[(x * B + y) * C + z] == in[(z * B + y) * A + x]);
  lg_free(text);
  lg_program_release(p);
  fx_close(&f);
}

/* ---- (i) graphs that break docs/kernel_ir.md ------------------------------------------------ */

/* linearize sink; 1 when it fails with LG_ERR_SPEC and a message holding each of the strings */
static bool fails_with(lg_ctx *ctx, lg_uop *sink, const char *a, const char *b) {
  lg_linear lin;
  lg_status st = lg_linearize(ctx, sink, &lin);
  lg_linear_free(&lin);
  const char *m = lg_ctx_error(ctx);
  if (st == LG_ERR_SPEC && strstr(m, a) && (!b || strstr(m, b))) return true;
  printf("\n  status %d: %s", (int)st, m);
  return false;
}

CTEST(codegen_errors) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  kg g0 = {.ctx = ctx}, *g = &g0;
  lg_uop *out = buf(g, LG_DT_FLOAT32, 0), *in = buf(g, LG_DT_FLOAT32, 1), *one = cf(g, LG_DT_FLOAT32, 1.0);
  lg_uop *c8 = ci(g, LG_DT_INT32, 8);

  /* a reduce range with a smaller axis than the output range around its result */
  lg_uop *ri = rng(g, 8, 0, 1), *rj = rng(g, 8, 1, 0);
  lg_uop *sum = red(g, "ADD", ld(g, in, bin(g, LG_OP_ADD, bin(g, LG_OP_MUL, ri, c8), rj)), ri);
  lg_uop *bad = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 1, end(g, st(g, out, rj, sum), rj));
  CHECK(fails_with(ctx, bad,
                   "linearize: REDUCE float32 ADD: ranges cannot nest: it reduces over RANGE axis 0, which would open"
                   " outside RANGE axis 1",
                   NULL));

  /* two reduces over one range, one of them also inside a loop it does not reduce over */
  lg_uop *r0 = rng(g, 4, 0, 0), *r1 = rng(g, 4, 1, 0), *r2 = rng(g, 8, 2, 1);
  lg_uop *s1 = red(g, "ADD", ld(g, in, bin(g, LG_OP_ADD, bin(g, LG_OP_MUL, r0, c8), r2)), r2);
  lg_uop *s2 = red(g, "ADD", ld(g, in, bin(g, LG_OP_ADD, bin(g, LG_OP_MUL, r1, c8), r2)), r2);
  lg_uop *o01 = bin(g, LG_OP_ADD, bin(g, LG_OP_MUL, r0, ci(g, LG_DT_INT32, 4)), r1);
  bad = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 1,
             node(g, LG_OP_END, LG_DT_VOID, NULL, 3, st(g, out, o01, bin(g, LG_OP_ADD, s1, s2)), r0, r1));
  CHECK(fails_with(
      ctx, bad, "ranges cannot nest: its update would run inside RANGE axis 1, which it does not reduce over", NULL));

  /* a STORE outside a range its END closes */
  lg_uop *r = rng(g, 8, 0, 0);
  bad = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 1, end(g, st(g, out, ci(g, LG_DT_INT32, 0), one), r));
  CHECK(fails_with(ctx, bad, "END: STORE is outside RANGE axis 0, which the END closes", NULL));

  /* an END that closes a range but stays inside it */
  bad = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 1, end(g, st(g, out, o01, one), r0));
  CHECK(fails_with(ctx, bad, "it closes RANGE axis 0, but its source also depends on RANGE axis 1", NULL));

  /* a range nothing closes */
  bad = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 1, st(g, out, r, one));
  CHECK(fails_with(ctx, bad, "SINK: RANGE axis 0 is never closed", NULL));

  /* a REDUCE used inside its own loop; a loop needed before and after its own reduce */
  lg_uop *v = ld(g, in, r), *total = red(g, "ADD", v, r);
  bad = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 1, end(g, st(g, out, r, bin(g, LG_OP_SUB, v, total)), r));
  CHECK(fails_with(
      ctx, bad, "SUB float32 uses REDUCE float32 ADD inside the loop of RANGE axis 0, which that REDUCE closes", NULL));
  lg_uop *twice = bin(g, LG_OP_MUL, total, cf(g, LG_DT_FLOAT32, 2.0));
  bad = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 1, end(g, st(g, out, r, bin(g, LG_OP_SUB, v, twice)), r));
  CHECK(fails_with(ctx, bad, "cannot order the loops: ", "needs MUL float32 needs the loop of RANGE axis 0"));
  /* two loops each needing the other's reduce */
  lg_uop *ra = rng(g, 4, 0, 1), *rb = rng(g, 4, 1, 1), *pa = red(g, "ADD", ld(g, in, ra), ra);
  lg_uop *pb = red(g, "ADD", bin(g, LG_OP_ADD, pa, ld(g, in, rb)), rb);
  bad = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 1, end(g, st(g, out, ra, bin(g, LG_OP_ADD, pb, ld(g, in, ra))), ra));
  CHECK(fails_with(ctx, bad, "the loop of RANGE axis 0 needs the loop of RANGE axis 1 needs the loop of RANGE axis 0",
                   NULL));

  /* two ranges with one axis; an unknown op; a malformed END; not a SINK */
  lg_uop *dup = rng(g, 9, 0, 0);
  bad = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 1, end(g, st(g, out, bin(g, LG_OP_ADD, r, dup), one), r));
  CHECK(fails_with(ctx, bad, "RANGE int32 (axis 0) and RANGE int32 (axis 0) have the same axis", NULL));
  bad = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 1, end(g, st(g, out, r, un(g, LG_OP_CONTIGUOUS, LG_DT_FLOAT32, v)), r));
  CHECK(fails_with(ctx, bad, "linearize: CONTIGUOUS float32 is not a kernel op the linearizer knows", NULL));
  bad = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 1, node(g, LG_OP_END, LG_DT_VOID, NULL, 2, st(g, out, r, v), c8));
  CHECK(fails_with(ctx, bad, "END: source 1 is CONST int32, not a RANGE", NULL));
  lg_linear lin;
  CHECK_INT(lg_linearize(ctx, v, &lin), LG_ERR_ARG);
  CHECK_STR(lg_ctx_error(ctx), "linearize: the root must be a SINK, got LOAD float32");

  /* what the renderer refuses */
  char *src = NULL;
  lg_uop *ok = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 1, end(g, st(g, out, r, v), r));
  CHECK_INT(lg_render_c(ctx, ok, "not a name", &src), LG_ERR_ARG);
  CHECK_STR(lg_ctx_error(ctx), "render C: the kernel name 'not a name' is not a C identifier");
  bad = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 1,
             end(g, st(g, out, r, node(g, LG_OP_LOAD, LG_DT_INT32, NULL, 1, idx(g, in, r))), r));
  CHECK_INT(lg_render_c(ctx, bad, "k", &src), LG_ERR_SPEC);
  CHECK_STR(lg_ctx_error(ctx), "render C: LOAD int32: loads int32 from a buffer of float32");
  lg_uop *prod = node(g, LG_OP_REDUCE, LG_DT_FLOAT32, &(lg_arg){.kind = LG_ARG_STR, .s = "PROD"}, 2, v, r);
  bad = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 1, st(g, out, ci(g, LG_DT_INT32, 0), prod));
  CHECK_INT(lg_render_c(ctx, bad, "k", &src), LG_ERR_SPEC);
  CHECK_STR(lg_ctx_error(ctx), "render C: REDUCE float32 PROD: the arg must be \"ADD\", \"MUL\" or \"MAX\"");
  CHECK(src == NULL);
  CHECK(!g->bad);
  kg_free(g);
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ctx_free(ctx);
}

/* ---- every ALU op, CAST and BITCAST against core/alu.c's folding --------------------------------- */

/* One case: op on operands of dtype `from` (loaded from memory, so nothing is known of their
 * bounds), giving `to`. WHERE is WHERE(a < b, a, b). */
typedef struct sem {
  int32_t op;
  lg_dtype to, from;
  int64_t i[3];
  double f[3];
} sem;

#define IV(...) .i = {__VA_ARGS__}
#define FV(...) .f = {__VA_ARGS__}
enum { B = LG_DT_BOOL, I8 = LG_DT_INT8, I16 = LG_DT_INT16, I32 = LG_DT_INT32, I64 = LG_DT_INT64, U8 = LG_DT_UINT8,
       U16 = LG_DT_UINT16, U32 = LG_DT_UINT32, U64 = LG_DT_UINT64, F16 = LG_DT_FLOAT16, BF16 = LG_DT_BFLOAT16,
       F32 = LG_DT_FLOAT32, F64 = LG_DT_FLOAT64 };

static const sem sems[] = {
    /* int8: wrapping, division, shifts (amounts outside [0, 8) give 0, or -1 for SHR of a negative) */
    {LG_OP_ADD, I8, I8, IV(100, 100)}, {LG_OP_SUB, I8, I8, IV(-100, 100)}, {LG_OP_MUL, I8, I8, IV(-128, -1)},
    {LG_OP_NEG, I8, I8, IV(-128)}, {LG_OP_MULACC, I8, I8, IV(16, 16, 5)}, {LG_OP_IDIV, I8, I8, IV(-128, -1)},
    {LG_OP_IDIV, I8, I8, IV(-7, 2)}, {LG_OP_MOD, I8, I8, IV(-7, 2)}, {LG_OP_IDIV, I8, I8, IV(5, 0)},
    {LG_OP_MOD, I8, I8, IV(5, 0)}, {LG_OP_MOD, I8, I8, IV(-128, -1)}, {LG_OP_SHL, I8, I8, IV(1, 7)},
    {LG_OP_SHL, I8, I8, IV(-3, 2)}, {LG_OP_SHL, I8, I8, IV(1, 8)}, {LG_OP_SHR, I8, I8, IV(-128, 3)},
    {LG_OP_SHR, I8, I8, IV(-5, 9)}, {LG_OP_SHR, I8, I8, IV(5, -1)}, {LG_OP_MAX, I8, I8, IV(-3, 2)},
    {LG_OP_XOR, I8, I8, IV(0x55, -1)}, {LG_OP_AND, I8, I8, IV(-2, 7)}, {LG_OP_OR, I8, I8, IV(-128, 1)},
    {LG_OP_CMPLT, B, I8, IV(-1, 1)}, {LG_OP_CMPNE, B, I8, IV(3, 3)}, {LG_OP_CMPEQ, B, I8, IV(3, 3)},
    {LG_OP_WHERE, I8, I8, IV(-5, 4)},
    /* unsigned 8 and 16 bits: C promotes them to int */
    {LG_OP_SUB, U8, U8, IV(0, 1)}, {LG_OP_MUL, U16, U16, IV(65535, 65535)}, {LG_OP_NEG, U16, U16, IV(1)},
    {LG_OP_MULACC, U16, U16, IV(65535, 65535, 7)}, {LG_OP_CMPLT, B, U16, IV(1, 65535)},
    {LG_OP_SHR, U16, U16, IV(65535, 20)}, {LG_OP_IDIV, U16, U16, IV(65535, 0)},
    {LG_OP_MUL, I16, I16, IV(-32768, -32768)},
    /* 32 and 64 bits */
    {LG_OP_ADD, I32, I32, IV(INT32_MAX, 1)}, {LG_OP_MUL, I32, I32, IV(65536, 65536)},
    {LG_OP_NEG, I32, I32, IV(INT32_MIN)}, {LG_OP_IDIV, I32, I32, IV(INT32_MIN, -1)},
    {LG_OP_MOD, I32, I32, IV(INT32_MIN, -1)}, {LG_OP_IDIV, I32, I32, IV(7, -2)}, {LG_OP_MOD, I32, I32, IV(7, -2)},
    {LG_OP_MOD, I32, I32, IV(-7, 0)}, {LG_OP_SHL, I32, I32, IV(1, 31)}, {LG_OP_SHL, I32, I32, IV(3, 32)},
    {LG_OP_SHR, I32, I32, IV(-1, 40)}, {LG_OP_MAX, I32, I32, IV(INT32_MIN, -1)},
    {LG_OP_MULACC, I32, I32, IV(INT32_MAX, 2, 5)}, {LG_OP_ADD, I64, I64, IV(INT64_MAX, 1)},
    {LG_OP_MUL, I64, I64, IV(INT64_C(1) << 32, INT64_C(1) << 32)}, {LG_OP_IDIV, I64, I64, IV(INT64_MIN, -1)},
    {LG_OP_SHL, I64, I64, IV(5, 63)}, {LG_OP_SUB, U32, U32, IV(0, 1)}, {LG_OP_IDIV, U32, U32, IV(7, 0)},
    {LG_OP_CMPLT, B, U32, IV(1, -1)}, {LG_OP_MAX, U64, U64, IV(-1, 1)}, {LG_OP_MUL, U64, U64, IV(-1, -1)},
    {LG_OP_MOD, U64, U64, IV(-1, 10)},
    /* bool */
    {LG_OP_MAX, B, B, IV(0, 1)}, {LG_OP_XOR, B, B, IV(1, 1)}, {LG_OP_CMPLT, B, B, IV(0, 1)},
    {LG_OP_AND, B, B, IV(1, 0)},
    /* float32: MAX propagates NaN and orders -0.0 below 0.0; MULACC is not fused */
    {LG_OP_MAX, F32, F32, FV(NAN, 1)}, {LG_OP_MAX, F32, F32, FV(1, NAN)}, {LG_OP_MAX, F32, F32, FV(-0.0, 0.0)},
    {LG_OP_MAX, F32, F32, FV(0.0, -0.0)}, {LG_OP_MAX, F32, F32, FV(-INFINITY, -3)}, {LG_OP_FDIV, F32, F32, FV(1, 0)},
    {LG_OP_FDIV, F32, F32, FV(1, 3)}, {LG_OP_SQRT, F32, F32, FV(2)}, {LG_OP_RECIPROCAL, F32, F32, FV(3)},
    {LG_OP_TRUNC, F32, F32, FV(-2.5)}, {LG_OP_NEG, F32, F32, FV(0.0)}, {LG_OP_POW, F32, F32, FV(2, 0.5)},
    {LG_OP_EXP2, F32, F32, FV(0.3)}, {LG_OP_LOG2, F32, F32, FV(3)}, {LG_OP_SIN, F32, F32, FV(1)},
    {LG_OP_MULACC, F32, F32, FV(1 + 0x1p-23, 1 + 0x1p-23, -1)}, {LG_OP_CMPNE, B, F32, FV(NAN, NAN)},
    {LG_OP_CMPLT, B, F32, FV(NAN, 1)}, {LG_OP_CMPEQ, B, F32, FV(-0.0, 0.0)}, {LG_OP_WHERE, F32, F32, FV(2.5, -1)},
    /* float16 and bfloat16: each operation rounds to the dtype */
    {LG_OP_ADD, F16, F16, FV(1, 0x1p-11)}, {LG_OP_ADD, F16, F16, FV(1, 0x1.8p-11)},
    {LG_OP_MUL, F16, F16, FV(1 + 0x1p-10, 1 + 0x1p-10)}, {LG_OP_MULACC, F16, F16, FV(1 + 0x1p-10, 1 + 0x1p-10, -1)},
    {LG_OP_FDIV, F16, F16, FV(1, 3)}, {LG_OP_SQRT, F16, F16, FV(2)}, {LG_OP_MAX, F16, F16, FV(NAN, 1)},
    {LG_OP_NEG, F16, F16, FV(0)}, {LG_OP_MUL, F16, F16, FV(300, 300)}, {LG_OP_RECIPROCAL, F16, F16, FV(3)},
    {LG_OP_ADD, BF16, BF16, FV(1, 0x1p-8)}, {LG_OP_ADD, BF16, BF16, FV(1, 0x1.8p-8)},
    {LG_OP_MUL, BF16, BF16, FV(1 + 0x1p-7, 1 + 0x1p-7)}, {LG_OP_MULACC, BF16, BF16, FV(1 + 0x1p-7, 1 + 0x1p-7, -1)},
    {LG_OP_FDIV, BF16, BF16, FV(1, 3)}, {LG_OP_SQRT, BF16, BF16, FV(2)}, {LG_OP_MAX, BF16, BF16, FV(-0.0, 0.0)},
    {LG_OP_SUB, BF16, BF16, FV(NAN, 1)}, {LG_OP_CMPLT, B, BF16, FV(1, 1 + 0x1p-7)},
    /* float64 */
    {LG_OP_FDIV, F64, F64, FV(1, 3)}, {LG_OP_MAX, F64, F64, FV(-0.0, 0.0)}, {LG_OP_SIN, F64, F64, FV(1)},
    {LG_OP_MULACC, F64, F64, FV(0.1, 0.1, -0.01)},
    /* CAST: float -> int saturates and NaN gives 0; to bfloat16 and float16 rounds once */
    {LG_OP_CAST, I32, F32, FV(3.7)}, {LG_OP_CAST, I32, F32, FV(-3.7)}, {LG_OP_CAST, I32, F32, FV(3e9)},
    {LG_OP_CAST, I32, F32, FV(-3e9)}, {LG_OP_CAST, I32, F32, FV(NAN)}, {LG_OP_CAST, I8, F32, FV(300)},
    {LG_OP_CAST, U8, F32, FV(-5)}, {LG_OP_CAST, U8, F32, FV(-0.5)}, {LG_OP_CAST, I64, F64, FV(1e19)},
    {LG_OP_CAST, U64, F64, FV(1e19)}, {LG_OP_CAST, U64, F64, FV(-1)}, {LG_OP_CAST, I16, F16, FV(-65504)},
    {LG_OP_CAST, I32, BF16, FV(-1e10)}, {LG_OP_CAST, B, F32, FV(NAN)}, {LG_OP_CAST, B, F32, FV(-0.0)},
    {LG_OP_CAST, B, I32, IV(-5)}, {LG_OP_CAST, F16, I32, IV(2049)}, {LG_OP_CAST, F16, F32, FV(65520)},
    {LG_OP_CAST, F16, F64, FV(1 + 0x1p-11 + 0x1p-40)}, {LG_OP_CAST, BF16, F32, FV(1 + 0x1p-8 + 0x1p-20)},
    {LG_OP_CAST, BF16, F64, FV(1 + 0x1p-8 + 0x1p-40)}, {LG_OP_CAST, BF16, I32, IV(16777216 + 65536 + 1)},
    {LG_OP_CAST, BF16, I64, IV((INT64_C(1) << 60) + (INT64_C(1) << 52) + 1)}, {LG_OP_CAST, BF16, U64, IV(-1)},
    {LG_OP_CAST, BF16, F16, FV(1 + 0x1p-10)}, {LG_OP_CAST, BF16, I8, IV(-100)}, {LG_OP_CAST, F32, I32, IV(16777217)},
    {LG_OP_CAST, F32, U64, IV(-1)}, {LG_OP_CAST, F32, I64, IV(INT64_MIN + 1)}, {LG_OP_CAST, F32, BF16, FV(1.5)},
    {LG_OP_CAST, F32, F16, FV(0.1)}, {LG_OP_CAST, F64, F32, FV(0.1)}, {LG_OP_CAST, I8, I32, IV(300)},
    {LG_OP_CAST, U32, I8, IV(-1)}, {LG_OP_CAST, I32, B, IV(1)}, {LG_OP_CAST, F32, B, IV(1)},
    {LG_OP_CAST, F64, I64, IV(INT64_MAX)},
    /* constants: the text of each dtype's literals */
    {LG_OP_CONST, F32, F32, FV(0.1)}, {LG_OP_CONST, F32, F32, FV(-0.0)}, {LG_OP_CONST, F32, F32, FV(INFINITY)},
    {LG_OP_CONST, F32, F32, FV(-INFINITY)}, {LG_OP_CONST, F32, F32, FV(NAN)}, {LG_OP_CONST, F32, F32, FV(1e20)},
    {LG_OP_CONST, F32, F32, FV(3.4028234663852886e38)}, {LG_OP_CONST, F32, F32, FV(0x1p-149)},
    {LG_OP_CONST, F32, F32, FV(10)}, {LG_OP_CONST, F32, F32, FV(123456.7)}, {LG_OP_CONST, F64, F64, FV(0.1)},
    {LG_OP_CONST, F64, F64, FV(1e300)}, {LG_OP_CONST, F64, F64, FV(0x1p-1074)}, {LG_OP_CONST, F64, F64, FV(-0.0)},
    {LG_OP_CONST, F64, F64, FV(999999.5)}, {LG_OP_CONST, F16, F16, FV(65504)}, {LG_OP_CONST, F16, F16, FV(0x1p-24)},
    {LG_OP_CONST, F16, F16, FV(-0.0)}, {LG_OP_CONST, F16, F16, FV(0.1)}, {LG_OP_CONST, F16, F16, FV(-INFINITY)},
    {LG_OP_CONST, BF16, BF16, FV(0.1)}, {LG_OP_CONST, BF16, BF16, FV(3.3895313892515355e38)},
    {LG_OP_CONST, BF16, BF16, FV(0x1p-133)}, {LG_OP_CONST, BF16, BF16, FV(NAN)}, {LG_OP_CONST, I8, I8, IV(-128)},
    {LG_OP_CONST, I16, I16, IV(-32768)}, {LG_OP_CONST, I32, I32, IV(INT32_MIN)}, {LG_OP_CONST, I64, I64, IV(INT64_MIN)},
    {LG_OP_CONST, I64, I64, IV(INT64_MAX)}, {LG_OP_CONST, U8, U8, IV(255)}, {LG_OP_CONST, U16, U16, IV(65535)},
    {LG_OP_CONST, U32, U32, IV(-1)}, {LG_OP_CONST, U64, U64, IV(-1)}, {LG_OP_CONST, B, B, IV(1)},
    /* BITCAST */
    {LG_OP_BITCAST, I32, F32, FV(1.0)}, {LG_OP_BITCAST, F32, I32, IV(0x40490fdb)}, {LG_OP_BITCAST, I16, F16, FV(1.0)},
    {LG_OP_BITCAST, I16, BF16, FV(-2.0)}, {LG_OP_BITCAST, BF16, I16, IV(0x4040)}, {LG_OP_BITCAST, F16, U16, IV(0x7c00)},
    {LG_OP_BITCAST, U8, I8, IV(-1)}, {LG_OP_BITCAST, U64, F64, FV(-0.0)}, {LG_OP_BITCAST, BF16, F16, FV(1.0)},
    {LG_OP_BITCAST, F16, BF16, FV(1.0)},
};
enum { NSEM = sizeof sems / sizeof sems[0] };

static int loads_of(int32_t op) {
  if (op == LG_OP_CONST) return 0;
  if (op == LG_OP_MULACC) return 3;
  return op == LG_OP_CAST || op == LG_OP_BITCAST || (lg_op_flags(op) & LG_OPF_UNARY) ? 1 : 2;
}

static lg_uop *sem_expr(kg *g, const sem *s, lg_uop **x) {
  switch (s->op) {
  case LG_OP_CONST: return lg_dtype_kind(s->to) == 'f' ? cf(g, s->to, s->f[0]) : ci(g, s->to, s->i[0]);
  case LG_OP_CAST:
  case LG_OP_BITCAST: return un(g, s->op, s->to, x[0]);
  case LG_OP_WHERE: return node(g, LG_OP_WHERE, s->to, NULL, 3, bin(g, LG_OP_CMPLT, x[0], x[1]), x[0], x[1]);
  case LG_OP_MULACC: return node(g, LG_OP_MULACC, s->to, NULL, 3, x[0], x[1], x[2]);
  default: return loads_of(s->op) == 1 ? un(g, s->op, s->to, x[0]) : bin(g, s->op, x[0], x[1]);
  }
}

/* the folded value of a case; where core/alu.c does not fold, the renderer's documented choice */
static void sem_expect(kg *g, const sem *s, int64_t *ri, double *rf) {
  lg_uop *c[3], *u = NULL, *cond = NULL;
  if (s->op == LG_OP_CONST) {
    *ri = lg_uop_arg(sem_expr(g, s, c))->i, *rf = lg_uop_arg(sem_expr(g, s, c))->f;
    return;
  }
  for (int k = 0; k < loads_of(s->op); k++)
    c[k] = lg_dtype_kind(s->from) == 'f' ? cf(g, s->from, s->f[k]) : ci(g, s->from, s->i[k]);
  if (s->op == LG_OP_WHERE) lg_uop_fold(g->ctx, bin(g, LG_OP_CMPLT, c[0], c[1]), &cond);
  lg_uop_fold(g->ctx, s->op == LG_OP_WHERE ? node(g, LG_OP_WHERE, s->to, NULL, 3, cond, c[0], c[1]) : sem_expr(g, s, c),
              &u);
  lg_uop_release(cond);
  *ri = 0, *rf = 0;
  if (u) {
    *ri = lg_uop_arg(u)->i, *rf = lg_uop_arg(u)->f;
    lg_uop_release(u);
    return;
  }
  int64_t lo = 0, hi = -1; /* uint64: the bits of UINT64_MAX */
  lg_dt_int_range(s->to, &lo, &hi);
  if (s->op == LG_OP_SHR) *ri = s->i[0] < 0 ? -1 : 0;
  if (s->op == LG_OP_CAST) *ri = isnan(s->f[0]) ? 0 : s->f[0] < 0 ? lo : hi; /* out of range: saturated */
}

static void encode(kg *g, lg_dtype dt, int64_t i, double f, unsigned char *p) {
  if (dt == F32)
    memcpy(p, &(float){(float)f}, 4);
  else if (dt == F64)
    memcpy(p, &f, 8);
  else if (dt == F16 || dt == BF16)
    memcpy(p, &(uint16_t){bits16(g, dt, f)}, 2);
  else
    memcpy(p, &i, (size_t)lg_dtype_itemsize(dt)); /* little-endian */
}

static void decode(kg *g, lg_dtype dt, const unsigned char *p, int64_t *i, double *f) {
  uint64_t raw = 0;
  float x;
  memcpy(&raw, p, (size_t)lg_dtype_itemsize(dt));
  if (dt == F32)
    memcpy(&x, p, 4), *f = x;
  else if (dt == F64)
    memcpy(f, p, 8);
  else if (dt == F16 || dt == BF16)
    *f = from_bits16(g, dt, (uint16_t)raw);
  else
    *i = lg_wrap_int(dt, (int64_t)raw);
}

CTEST(codegen_alu_matches_folding) {
  fx f;
  REQUIRE(fx_open(&f));
  kg *g = &f.g;
  int slot_in[LG_DT__COUNT], slot_out[LG_DT__COUNT], nbuf = 0, where[NSEM][4];
  int64_t count[32] = {0};
  unsigned char *mem[32] = {0};
  lg_dtype bdt[32];
  for (int t = 0; t < LG_DT__COUNT; t++) slot_in[t] = slot_out[t] = -1;
  for (int k = 0; k < NSEM; k++) { /* places: operand j of case k at where[k][j], its result at where[k][3] */
    const sem *s = &sems[k];
    if (slot_in[s->from] < 0) bdt[nbuf] = s->from, slot_in[s->from] = nbuf++;
    if (slot_out[s->to] < 0) bdt[nbuf] = s->to, slot_out[s->to] = nbuf++;
    for (int j = 0; j < loads_of(s->op); j++) where[k][j] = (int)count[slot_in[s->from]]++;
    where[k][3] = (int)count[slot_out[s->to]]++;
  }
  REQUIRE(nbuf <= 32);
  lg_uop *stores[NSEM], *bufs[32];
  for (int b = 0; b < nbuf; b++) {
    mem[b] = calloc((size_t)count[b], (size_t)lg_dtype_itemsize(bdt[b]));
    bufs[b] = buf(g, bdt[b], b);
  }
  for (int k = 0; k < NSEM; k++) {
    const sem *s = &sems[k];
    lg_uop *x[3];
    int in = slot_in[s->from], w = lg_dtype_itemsize(s->from);
    for (int j = 0; j < loads_of(s->op); j++) {
      encode(g, s->from, s->i[j], s->f[j], mem[in] + where[k][j] * w);
      x[j] = ld(g, bufs[in], ci(g, LG_DT_INT32, where[k][j]));
    }
    stores[k] = st(g, bufs[slot_out[s->to]], ci(g, LG_DT_INT32, where[k][3]), sem_expr(g, s, x));
  }
  lg_uop *sink = NULL;
  REQUIRE_OK(f.ctx, lg_uop_new(f.ctx, LG_OP_SINK, LG_DT_VOID, stores, NSEM, NULL, &sink));
  lg_program *p = build_kernel(ctest_r_, &f, sink, "semantics", NULL);
  void *data[32];
  int64_t bytes[32];
  for (int b = 0; b < nbuf; b++) data[b] = mem[b], bytes[b] = count[b] * lg_dtype_itemsize(bdt[b]);
  CHECK(run(&f, p, nbuf, data, bytes, NULL, 0));
  for (int k = 0; k < NSEM && p; k++) {
    const sem *s = &sems[k];
    int64_t gi = 0, wi;
    double gf = 0, wf;
    decode(g, s->to, mem[slot_out[s->to]] + where[k][3] * lg_dtype_itemsize(s->to), &gi, &gf);
    sem_expect(g, s, &wi, &wf);
    bool approx =
        s->to == F32 && (s->op == LG_OP_EXP2 || s->op == LG_OP_LOG2 || s->op == LG_OP_SIN || s->op == LG_OP_POW);
    bool ok = lg_dtype_kind(s->to) != 'f' ? gi == wi
              : isnan(wf)                 ? isnan(gf)
              : approx                    ? fabs(gf - wf) <= 1e-6 * fabs(wf)
                                          : gf == wf && signbit(gf) == signbit(wf);
    char from[24], to[24];
    lg_dtype_name(s->from, from, sizeof from), lg_dtype_name(s->to, to, sizeof to);
    CHECK_MSG(ok, "case %d: %s %s -> %s: got %lld / %.17g, expected %lld / %.17g", k, lg_op_name(s->op), from, to,
              (long long)gi, gf, (long long)wi, wf);
  }
  lg_uop_release(sink);
  for (int b = 0; b < nbuf; b++) free(mem[b]);
  lg_program_release(p);
  fx_close(&f);
}
