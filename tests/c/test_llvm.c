/* test_llvm.c: the LLVM device (devices/llvm): kernel graphs built by hand, rendered as LLVM IR,
 * compiled in-process and run against plain C loops; every ALU op, CAST, BITCAST and literal
 * kind against core/alu.c's folding; IR that does not compile (LLVM's diagnostic in the
 * message); the disk cache and programs that share an entry name. Each test in a private
 * CACHE_DIR. */
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <dirent.h>

#include "ctest.h"
#include "internal.h"

/* ---- building graphs: every node made is held by the kg and released with it ------------------ */

typedef struct kg {
  lg_ctx *ctx;
  lg_uop **held;
  int n, cap;
  bool bad; /* a node could not be made (its message is on ctx) */
} kg;

static lg_uop *node(kg *g, int32_t op, lg_dtype dt, const lg_arg *arg, int n, ...) {
  lg_uop *src[300], *u = NULL;
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

static lg_uop *ci(kg *g, lg_dtype dt, int64_t v) { return node(g, LG_OP_CONST, dt, &(lg_arg){.kind = LG_ARG_INT, .i = v}, 0); }
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
static lg_uop *rng(kg *g, int64_t size, int64_t axis, int64_t kind) { return rng_to(g, ci(g, LG_DT_INT32, size), axis, kind); }
static lg_uop *var(kg *g, const char *name, int64_t lo, int64_t hi) {
  int64_t a[2] = {lo, hi};
  return node(g, LG_OP_DEFINE_VAR, LG_DT_INT32, &(lg_arg){.kind = LG_ARG_STR_INTS, .n = 2, .s = name, .ints = a}, 0);
}
static lg_dtype elem(lg_uop *b) { return b ? lg_dtype_base(lg_uop_dtype(b)) : LG_DT_VOID; }
static lg_dtype dtype_of(lg_uop *u) { return u ? lg_uop_dtype(u) : LG_DT_VOID; }
static lg_uop *idx(kg *g, lg_uop *b, lg_uop *i) { return node(g, LG_OP_INDEX, dtype_of(b), NULL, 2, b, i); }
static lg_uop *gidx(kg *g, lg_uop *b, lg_uop *i, lg_uop *gate) { return node(g, LG_OP_INDEX, dtype_of(b), NULL, 3, b, i, gate); }
static lg_uop *ld(kg *g, lg_uop *b, lg_uop *i) { return node(g, LG_OP_LOAD, elem(b), NULL, 1, idx(g, b, i)); }
static lg_uop *st(kg *g, lg_uop *b, lg_uop *i, lg_uop *v) { return node(g, LG_OP_STORE, LG_DT_VOID, NULL, 2, idx(g, b, i), v); }
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

/* ---- a context with the LLVM device and a private cache folder --------------------------------- */

typedef struct fx {
  char dir[32];
  char *old_cache;
  lg_ctx *ctx;
  lg_device *dev;
  kg g;
} fx;

static bool fx_open(fx *f) {
  *f = (fx){0};
  strcpy(f->dir, "/tmp/lg_llvm_XXXXXX");
  const char *old = getenv("CACHE_DIR");
  f->old_cache = old ? strdup(old) : NULL;
  if (!mkdtemp(f->dir) || setenv("CACHE_DIR", f->dir, 1) || lg_ctx_new(&f->ctx)) return false;
  f->g.ctx = f->ctx;
  return lg_device_get(f->ctx, "LLVM", &f->dev) == LG_OK;
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

/* Render and compile; *text gets the IR (free with lg_free) when text is not NULL. */
static lg_program *build_kernel(ctest_run *ctest_r_, fx *f, lg_uop *sink, const char *name, char **text) {
  char *src = NULL;
  lg_program *p = NULL;
  CHECK_MSG(!f->g.bad, "building the graph: %s", lg_ctx_error(f->ctx));
  lg_status st = lg_render_llvm(f->ctx, sink, name, &src);
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
    ok = lg_buffer_new(f->ctx, f->dev, bytes[i], &b[i]) == LG_OK && lg_buffer_write(b[i], 0, data[i], bytes[i]) == LG_OK;
  ok = ok && lg_program_launch(f->ctx, p, b, n, ints, nints, NULL) == LG_OK;
  for (int i = 0; i < n && ok; i++) ok = lg_buffer_read(b[i], 0, data[i], bytes[i]) == LG_OK;
  for (int i = 0; i < n; i++) lg_buffer_release(b[i]);
  return ok;
}

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

/* ---- every ALU op, CAST and BITCAST against core/alu.c's folding --------------------------------- */

/* One case: op on operands of dtype `from` (loaded from memory, so nothing is known of their
 * bounds), giving `to`; a shift's amount has dtype `amt` (`from` when 0). WHERE is
 * WHERE(a < b, a, b). */
typedef struct sem {
  int32_t op;
  lg_dtype to, from;
  int64_t i[3];
  double f[3];
  lg_dtype amt;
} sem;

#define IV(...) .i = {__VA_ARGS__}
#define FV(...) .f = {__VA_ARGS__}
enum { B = LG_DT_BOOL, I8 = LG_DT_INT8, I16 = LG_DT_INT16, I32 = LG_DT_INT32, I64 = LG_DT_INT64, U8 = LG_DT_UINT8,
       U16 = LG_DT_UINT16, U32 = LG_DT_UINT32, U64 = LG_DT_UINT64, F16 = LG_DT_FLOAT16, BF16 = LG_DT_BFLOAT16,
       F32 = LG_DT_FLOAT32, F64 = LG_DT_FLOAT64 };

static const sem sems[] = {
    /* int8 and int16: wrapping; division in int as C does; shifts outside [0, 8) */
    {LG_OP_ADD, I8, I8, IV(100, 100)}, {LG_OP_SUB, I8, I8, IV(-100, 100)}, {LG_OP_MUL, I8, I8, IV(-128, -1)},
    {LG_OP_NEG, I8, I8, IV(-128)}, {LG_OP_MULACC, I8, I8, IV(16, 16, 5)}, {LG_OP_IDIV, I8, I8, IV(-128, -1)},
    {LG_OP_IDIV, I8, I8, IV(-7, 2)}, {LG_OP_MOD, I8, I8, IV(-7, 2)}, {LG_OP_IDIV, I8, I8, IV(5, 0)},
    {LG_OP_MOD, I8, I8, IV(5, 0)}, {LG_OP_MOD, I8, I8, IV(-128, -1)}, {LG_OP_IDIV, I16, I16, IV(-32768, -1)},
    {LG_OP_SHL, I8, I8, IV(1, 7)}, {LG_OP_SHL, I8, I8, IV(-3, 2)}, {LG_OP_SHL, I8, I8, IV(1, 8)},
    {LG_OP_SHR, I8, I8, IV(-128, 3)}, {LG_OP_SHR, I8, I8, IV(-5, 9)}, {LG_OP_SHR, I8, I8, IV(5, -1)},
    {LG_OP_SHL, I8, I8, IV(3, 2), .amt = I64}, {LG_OP_SHR, I8, I8, IV(-64, 300), .amt = I64},
    {LG_OP_SHL, I64, I64, IV(3, 40), .amt = I8}, {LG_OP_SHR, I64, I64, IV(-1, -1), .amt = I8},
    {LG_OP_MAX, I8, I8, IV(-3, 2)}, {LG_OP_XOR, I8, I8, IV(0x55, -1)}, {LG_OP_AND, I8, I8, IV(-2, 7)},
    {LG_OP_OR, I8, I8, IV(-128, 1)}, {LG_OP_CMPLT, B, I8, IV(-1, 1)}, {LG_OP_CMPNE, B, I8, IV(3, 3)},
    {LG_OP_CMPEQ, B, I8, IV(3, 3)}, {LG_OP_WHERE, I8, I8, IV(-5, 4)},
    /* unsigned */
    {LG_OP_SUB, U8, U8, IV(0, 1)}, {LG_OP_MUL, U16, U16, IV(65535, 65535)}, {LG_OP_NEG, U16, U16, IV(1)},
    {LG_OP_MULACC, U16, U16, IV(65535, 65535, 7)}, {LG_OP_CMPLT, B, U16, IV(1, 65535)},
    {LG_OP_SHR, U16, U16, IV(65535, 20)}, {LG_OP_IDIV, U16, U16, IV(65535, 0)}, {LG_OP_MOD, U8, U8, IV(200, 0)},
    {LG_OP_MAX, U8, U8, IV(200, 100)}, {LG_OP_SUB, U32, U32, IV(0, 1)}, {LG_OP_IDIV, U32, U32, IV(7, 0)},
    {LG_OP_CMPLT, B, U32, IV(1, -1)}, {LG_OP_MAX, U64, U64, IV(-1, 1)}, {LG_OP_MUL, U64, U64, IV(-1, -1)},
    {LG_OP_MOD, U64, U64, IV(-1, 10)}, {LG_OP_SHR, U64, U64, IV(-1, 63)}, {LG_OP_IDIV, U64, U64, IV(-1, 0)},
    /* 32 and 64 bits */
    {LG_OP_ADD, I32, I32, IV(INT32_MAX, 1)}, {LG_OP_MUL, I32, I32, IV(65536, 65536)},
    {LG_OP_NEG, I32, I32, IV(INT32_MIN)}, {LG_OP_IDIV, I32, I32, IV(INT32_MIN, -1)},
    {LG_OP_MOD, I32, I32, IV(INT32_MIN, -1)}, {LG_OP_IDIV, I32, I32, IV(7, -2)}, {LG_OP_MOD, I32, I32, IV(7, -2)},
    {LG_OP_MOD, I32, I32, IV(-7, 0)}, {LG_OP_IDIV, I32, I32, IV(-7, 0)}, {LG_OP_SHL, I32, I32, IV(1, 31)},
    {LG_OP_SHL, I32, I32, IV(3, 32)}, {LG_OP_SHR, I32, I32, IV(-1, 40)}, {LG_OP_SHR, I32, I32, IV(-8, 1)},
    {LG_OP_MAX, I32, I32, IV(INT32_MIN, -1)}, {LG_OP_MULACC, I32, I32, IV(INT32_MAX, 2, 5)},
    {LG_OP_ADD, I64, I64, IV(INT64_MAX, 1)}, {LG_OP_MUL, I64, I64, IV(INT64_C(1) << 32, INT64_C(1) << 32)},
    {LG_OP_IDIV, I64, I64, IV(INT64_MIN, -1)}, {LG_OP_MOD, I64, I64, IV(INT64_MIN, -1)},
    {LG_OP_SHL, I64, I64, IV(5, 63)}, {LG_OP_SHL, I64, I64, IV(5, 64)},
    /* bool */
    {LG_OP_MAX, B, B, IV(0, 1)}, {LG_OP_XOR, B, B, IV(1, 1)}, {LG_OP_CMPLT, B, B, IV(0, 1)},
    {LG_OP_AND, B, B, IV(1, 0)}, {LG_OP_OR, B, B, IV(0, 0)}, {LG_OP_CMPNE, B, B, IV(1, 0)},
    {LG_OP_WHERE, B, B, IV(0, 1)},
    /* float32: MAX propagates NaN and orders -0.0 below 0.0; MULACC is not fused */
    {LG_OP_MAX, F32, F32, FV(NAN, 1)}, {LG_OP_MAX, F32, F32, FV(1, NAN)}, {LG_OP_MAX, F32, F32, FV(-0.0, 0.0)},
    {LG_OP_MAX, F32, F32, FV(0.0, -0.0)}, {LG_OP_MAX, F32, F32, FV(-INFINITY, -3)}, {LG_OP_FDIV, F32, F32, FV(1, 0)},
    {LG_OP_FDIV, F32, F32, FV(1, 3)}, {LG_OP_SQRT, F32, F32, FV(2)}, {LG_OP_RECIPROCAL, F32, F32, FV(3)},
    {LG_OP_TRUNC, F32, F32, FV(-2.5)}, {LG_OP_NEG, F32, F32, FV(0.0)}, {LG_OP_POW, F32, F32, FV(2, 0.5)},
    {LG_OP_EXP2, F32, F32, FV(0.3)}, {LG_OP_LOG2, F32, F32, FV(3)}, {LG_OP_SIN, F32, F32, FV(1)},
    {LG_OP_MULACC, F32, F32, FV(1 + 0x1p-23, 1 + 0x1p-23, -1)}, {LG_OP_CMPNE, B, F32, FV(NAN, NAN)},
    {LG_OP_CMPLT, B, F32, FV(NAN, 1)}, {LG_OP_CMPEQ, B, F32, FV(-0.0, 0.0)}, {LG_OP_WHERE, F32, F32, FV(2.5, -1)},
    {LG_OP_SUB, F32, F32, FV(1, 1e-8)}, {LG_OP_ADD, F32, F32, FV(INFINITY, -INFINITY)},
    /* float16 and bfloat16: each operation rounds to the dtype */
    {LG_OP_ADD, F16, F16, FV(1, 0x1p-11)}, {LG_OP_ADD, F16, F16, FV(1, 0x1.8p-11)},
    {LG_OP_MUL, F16, F16, FV(1 + 0x1p-10, 1 + 0x1p-10)}, {LG_OP_MULACC, F16, F16, FV(1 + 0x1p-10, 1 + 0x1p-10, -1)},
    {LG_OP_FDIV, F16, F16, FV(1, 3)}, {LG_OP_SQRT, F16, F16, FV(2)}, {LG_OP_MAX, F16, F16, FV(NAN, 1)},
    {LG_OP_MAX, F16, F16, FV(-0.0, 0.0)}, {LG_OP_NEG, F16, F16, FV(0)}, {LG_OP_MUL, F16, F16, FV(300, 300)},
    {LG_OP_RECIPROCAL, F16, F16, FV(3)}, {LG_OP_EXP2, F16, F16, FV(0.5)}, {LG_OP_LOG2, F16, F16, FV(3)},
    {LG_OP_SIN, F16, F16, FV(1)}, {LG_OP_POW, F16, F16, FV(3, 2.5)}, {LG_OP_TRUNC, F16, F16, FV(-7.75)},
    {LG_OP_CMPLT, B, F16, FV(1, 1 + 0x1p-10)}, {LG_OP_SUB, F16, F16, FV(0x1p-24, 0x1p-23)},
    {LG_OP_ADD, BF16, BF16, FV(1, 0x1p-8)}, {LG_OP_ADD, BF16, BF16, FV(1, 0x1.8p-8)},
    {LG_OP_MUL, BF16, BF16, FV(1 + 0x1p-7, 1 + 0x1p-7)}, {LG_OP_MULACC, BF16, BF16, FV(1 + 0x1p-7, 1 + 0x1p-7, -1)},
    {LG_OP_FDIV, BF16, BF16, FV(1, 3)}, {LG_OP_SQRT, BF16, BF16, FV(2)}, {LG_OP_MAX, BF16, BF16, FV(-0.0, 0.0)},
    {LG_OP_MAX, BF16, BF16, FV(1, NAN)}, {LG_OP_SUB, BF16, BF16, FV(NAN, 1)}, {LG_OP_CMPLT, B, BF16, FV(1, 1 + 0x1p-7)},
    {LG_OP_RECIPROCAL, BF16, BF16, FV(3)}, {LG_OP_EXP2, BF16, BF16, FV(0.5)}, {LG_OP_TRUNC, BF16, BF16, FV(-2.5)},
    {LG_OP_NEG, BF16, BF16, FV(1.5)}, {LG_OP_WHERE, BF16, BF16, FV(2, -1)},
    /* float64 */
    {LG_OP_FDIV, F64, F64, FV(1, 3)}, {LG_OP_MAX, F64, F64, FV(-0.0, 0.0)}, {LG_OP_SIN, F64, F64, FV(1)},
    {LG_OP_MULACC, F64, F64, FV(0.1, 0.1, -0.01)}, {LG_OP_SQRT, F64, F64, FV(2)}, {LG_OP_MAX, F64, F64, FV(NAN, 0)},
    /* CAST: float -> int saturates and NaN gives 0; to bfloat16 and float16 rounds once */
    {LG_OP_CAST, I32, F32, FV(3.7)}, {LG_OP_CAST, I32, F32, FV(-3.7)}, {LG_OP_CAST, I32, F32, FV(3e9)},
    {LG_OP_CAST, I32, F32, FV(-3e9)}, {LG_OP_CAST, I32, F32, FV(NAN)}, {LG_OP_CAST, I8, F32, FV(300)},
    {LG_OP_CAST, U8, F32, FV(-5)}, {LG_OP_CAST, U8, F32, FV(-0.5)}, {LG_OP_CAST, I64, F64, FV(1e19)},
    {LG_OP_CAST, U64, F64, FV(1e19)}, {LG_OP_CAST, U64, F64, FV(-1)}, {LG_OP_CAST, U64, F64, FV(1e20)},
    {LG_OP_CAST, I16, F16, FV(-65504)}, {LG_OP_CAST, U8, F16, FV(INFINITY)}, {LG_OP_CAST, I32, BF16, FV(-1e10)},
    {LG_OP_CAST, B, F32, FV(NAN)}, {LG_OP_CAST, B, F32, FV(-0.0)}, {LG_OP_CAST, B, F16, FV(0.5)},
    {LG_OP_CAST, B, BF16, FV(0.0)}, {LG_OP_CAST, B, I32, IV(-5)}, {LG_OP_CAST, B, U8, IV(0)},
    {LG_OP_CAST, F16, I32, IV(2049)}, {LG_OP_CAST, F16, I64, IV(INT64_MIN)}, {LG_OP_CAST, F16, U64, IV(65519)},
    {LG_OP_CAST, F16, U64, IV(-1)}, {LG_OP_CAST, F16, I8, IV(-128)}, {LG_OP_CAST, F16, B, IV(1)},
    {LG_OP_CAST, F16, F32, FV(65520)}, {LG_OP_CAST, F16, F32, FV(0x1p-25)}, {LG_OP_CAST, F16, F32, FV(0x1.8p-25)},
    {LG_OP_CAST, F16, F64, FV(1 + 0x1p-11 + 0x1p-40)}, {LG_OP_CAST, F16, F64, FV(1 + 0x1p-11)},
    {LG_OP_CAST, F16, F64, FV(-1e300)}, {LG_OP_CAST, F16, BF16, FV(1 + 0x1p-7)},
    {LG_OP_CAST, BF16, F32, FV(1 + 0x1p-8 + 0x1p-20)}, {LG_OP_CAST, BF16, F32, FV(NAN)},
    {LG_OP_CAST, BF16, F64, FV(1 + 0x1p-8 + 0x1p-40)}, {LG_OP_CAST, BF16, F64, FV(1e39)},
    {LG_OP_CAST, BF16, I32, IV(16777216 + 65536 + 1)}, {LG_OP_CAST, BF16, U32, IV(-1)},
    {LG_OP_CAST, BF16, I64, IV((INT64_C(1) << 60) + (INT64_C(1) << 52) + 1)}, {LG_OP_CAST, BF16, I64, IV(-257)},
    {LG_OP_CAST, BF16, U64, IV(-1)}, {LG_OP_CAST, BF16, F16, FV(1 + 0x1p-10)}, {LG_OP_CAST, BF16, I8, IV(-100)},
    {LG_OP_CAST, BF16, U16, IV(65535)}, {LG_OP_CAST, BF16, B, IV(1)}, {LG_OP_CAST, F32, I32, IV(16777217)},
    {LG_OP_CAST, F32, U64, IV(-1)}, {LG_OP_CAST, F32, I64, IV(INT64_MIN + 1)}, {LG_OP_CAST, F32, BF16, FV(1.5)},
    {LG_OP_CAST, F32, F16, FV(0.1)}, {LG_OP_CAST, F32, F64, FV(0.1)}, {LG_OP_CAST, F64, F32, FV(0.1)},
    {LG_OP_CAST, F64, F16, FV(-0.0)}, {LG_OP_CAST, F64, BF16, FV(3.5)}, {LG_OP_CAST, F64, I64, IV(INT64_MAX)},
    {LG_OP_CAST, F64, U64, IV(-1)}, {LG_OP_CAST, I8, I32, IV(300)}, {LG_OP_CAST, U32, I8, IV(-1)},
    {LG_OP_CAST, I64, U32, IV(-1)}, {LG_OP_CAST, I16, U16, IV(65535)}, {LG_OP_CAST, I32, B, IV(1)},
    {LG_OP_CAST, F32, B, IV(1)}, {LG_OP_CAST, U64, I8, IV(-2)},
    /* constants: each dtype's literals */
    {LG_OP_CONST, F32, F32, FV(0.1)}, {LG_OP_CONST, F32, F32, FV(-0.0)}, {LG_OP_CONST, F32, F32, FV(INFINITY)},
    {LG_OP_CONST, F32, F32, FV(-INFINITY)}, {LG_OP_CONST, F32, F32, FV(NAN)}, {LG_OP_CONST, F32, F32, FV(0x1p-149)},
    {LG_OP_CONST, F32, F32, FV(3.4028234663852886e38)}, {LG_OP_CONST, F64, F64, FV(0.1)},
    {LG_OP_CONST, F64, F64, FV(0x1p-1074)}, {LG_OP_CONST, F64, F64, FV(-0.0)}, {LG_OP_CONST, F16, F16, FV(65504)},
    {LG_OP_CONST, F16, F16, FV(0x1p-24)}, {LG_OP_CONST, F16, F16, FV(0x1.ffcp-15)}, {LG_OP_CONST, F16, F16, FV(-0.0)},
    {LG_OP_CONST, F16, F16, FV(0.1)}, {LG_OP_CONST, F16, F16, FV(-INFINITY)}, {LG_OP_CONST, F16, F16, FV(NAN)},
    {LG_OP_CONST, BF16, BF16, FV(0.1)}, {LG_OP_CONST, BF16, BF16, FV(3.3895313892515355e38)},
    {LG_OP_CONST, BF16, BF16, FV(0x1p-133)}, {LG_OP_CONST, BF16, BF16, FV(NAN)}, {LG_OP_CONST, I8, I8, IV(-128)},
    {LG_OP_CONST, I16, I16, IV(-32768)}, {LG_OP_CONST, I32, I32, IV(INT32_MIN)}, {LG_OP_CONST, I64, I64, IV(INT64_MIN)},
    {LG_OP_CONST, I64, I64, IV(INT64_MAX)}, {LG_OP_CONST, U8, U8, IV(255)}, {LG_OP_CONST, U16, U16, IV(65535)},
    {LG_OP_CONST, U32, U32, IV(-1)}, {LG_OP_CONST, U64, U64, IV(-1)}, {LG_OP_CONST, B, B, IV(1)},
    {LG_OP_CONST, B, B, IV(0)},
    /* BITCAST */
    {LG_OP_BITCAST, I32, F32, FV(1.0)}, {LG_OP_BITCAST, F32, I32, IV(0x40490fdb)}, {LG_OP_BITCAST, I16, F16, FV(1.0)},
    {LG_OP_BITCAST, I16, BF16, FV(-2.0)}, {LG_OP_BITCAST, BF16, I16, IV(0x4040)}, {LG_OP_BITCAST, F16, U16, IV(0x7c00)},
    {LG_OP_BITCAST, U8, I8, IV(-1)}, {LG_OP_BITCAST, U64, F64, FV(-0.0)}, {LG_OP_BITCAST, BF16, F16, FV(1.0)},
    {LG_OP_BITCAST, F16, BF16, FV(1.0)}, {LG_OP_BITCAST, F64, I64, IV(0x7ff0000000000000)},
    {LG_OP_BITCAST, U32, F32, FV(-INFINITY)},
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

/* operand k of a case as a constant */
static lg_uop *sem_const(kg *g, const sem *s, int k) {
  lg_dtype dt = k == 1 && s->amt ? s->amt : s->from;
  return lg_dtype_kind(dt) == 'f' ? cf(g, dt, s->f[k]) : ci(g, dt, s->i[k]);
}

/* the folded value of a case; where core/alu.c does not fold, the documented choice */
static void sem_expect(kg *g, const sem *s, int64_t *ri, double *rf) {
  lg_uop *c[3], *u = NULL, *cond = NULL;
  if (s->op == LG_OP_CONST) {
    *ri = lg_uop_arg(sem_expr(g, s, c))->i, *rf = lg_uop_arg(sem_expr(g, s, c))->f;
    return;
  }
  for (int k = 0; k < loads_of(s->op); k++) c[k] = sem_const(g, s, k);
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
  else if (dt == B)
    *p = i != 0;
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

CTEST(llvm_alu_matches_folding) {
  fx f;
  REQUIRE(fx_open(&f));
  kg *g = &f.g;
  int slot[LG_DT__COUNT][2], nbuf = 0, where[NSEM][4];
  int64_t count[40] = {0};
  unsigned char *mem[40] = {0};
  lg_dtype bdt[40];
  for (int t = 0; t < LG_DT__COUNT; t++) slot[t][0] = slot[t][1] = -1;
  for (int k = 0; k < NSEM; k++) { /* operand j of case k at where[k][j] of its dtype's input, its result at where[k][3] */
    const sem *s = &sems[k];
    for (int j = 0; j < loads_of(s->op); j++) {
      lg_dtype dt = j == 1 && s->amt ? s->amt : s->from;
      if (slot[dt][0] < 0) bdt[nbuf] = dt, slot[dt][0] = nbuf++;
      where[k][j] = (int)count[slot[dt][0]]++;
    }
    if (slot[s->to][1] < 0) bdt[nbuf] = s->to, slot[s->to][1] = nbuf++;
    where[k][3] = (int)count[slot[s->to][1]]++;
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
    for (int j = 0; j < loads_of(s->op); j++) {
      lg_dtype dt = j == 1 && s->amt ? s->amt : s->from;
      int in = slot[dt][0];
      encode(g, dt, s->i[j], s->f[j], mem[in] + where[k][j] * lg_dtype_itemsize(dt));
      x[j] = ld(g, bufs[in], ci(g, LG_DT_INT32, where[k][j]));
    }
    stores[k] = st(g, bufs[slot[s->to][1]], ci(g, LG_DT_INT32, where[k][3]), sem_expr(g, s, x));
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
    decode(g, s->to, mem[slot[s->to][1]] + where[k][3] * lg_dtype_itemsize(s->to), &gi, &gf);
    sem_expect(g, s, &wi, &wf);
    bool approx = (s->to == F32 || s->to == F64) &&
                  (s->op == LG_OP_EXP2 || s->op == LG_OP_LOG2 || s->op == LG_OP_SIN || s->op == LG_OP_POW);
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

/* ---- kernels with loops: a padded row reduce to a DEFINE_VAR, a gated store, a transposed copy ---- */

CTEST(llvm_loops) {
  fx f;
  REQUIRE(fx_open(&f));
  kg *g = &f.g;
  enum { K = 37, ROWS = 16, T0 = 3, T1 = 4, T2 = 5 };
  /* out[i] = sum over j < K of (j < 2 ? -1 : a[i * K + j - 2]) * 0.5, for i < n */
  lg_uop *n = var(g, "n", 1, ROWS), *i = rng_to(g, n, 0, 0), *j = rng(g, K, 1, 1), *c2 = ci(g, LG_DT_INT32, 2);
  lg_uop *a = buf(g, LG_DT_FLOAT32, 1);
  lg_uop *at = bin(g, LG_OP_SUB, bin(g, LG_OP_ADD, bin(g, LG_OP_MUL, i, ci(g, LG_DT_INT32, K)), j), c2);
  lg_uop *pad = node(g, LG_OP_LOAD, LG_DT_FLOAT32, NULL, 2, gidx(g, a, at, bin(g, LG_OP_CMPLT, ci(g, LG_DT_INT32, 1), j)),
                     cf(g, LG_DT_FLOAT32, -1.0));
  lg_uop *sum = red(g, "ADD", bin(g, LG_OP_MUL, pad, cf(g, LG_DT_FLOAT32, 0.5)), j);
  lg_uop *e0 = end(g, st(g, buf(g, LG_DT_FLOAT32, 0), i, sum), i);
  /* big[k] = a[k] * 2 where k % 3 == 0; the row's max of int16 x */
  lg_uop *k = rng(g, ROWS * K, 2, 0), *m3 = bin(g, LG_OP_MOD, k, ci(g, LG_DT_INT32, 3));
  lg_uop *s2 = node(g, LG_OP_STORE, LG_DT_VOID, NULL, 2, gidx(g, buf(g, LG_DT_FLOAT32, 2), k, bin(g, LG_OP_CMPEQ, m3, ci(g, LG_DT_INT32, 0))),
                    bin(g, LG_OP_MUL, ld(g, a, k), cf(g, LG_DT_FLOAT32, 2.0)));
  lg_uop *r = rng(g, K, 3, 1);
  lg_uop *top = st(g, buf(g, LG_DT_INT16, 3), ci(g, LG_DT_INT32, 0), red(g, "MAX", ld(g, buf(g, LG_DT_INT16, 4), r), r));
  /* tr[(x * T1 + y) * T2 + z] = src[(z * T1 + y) * T0 + x] */
  lg_uop *x = rng(g, T0, 4, 0), *y = rng(g, T1, 5, 0), *z = rng(g, T2, 6, 0);
  lg_uop *c0 = ci(g, LG_DT_INT32, T0), *c1 = ci(g, LG_DT_INT32, T1), *cc2 = ci(g, LG_DT_INT32, T2);
  lg_uop *o = bin(g, LG_OP_ADD, bin(g, LG_OP_MUL, bin(g, LG_OP_ADD, bin(g, LG_OP_MUL, x, c1), y), cc2), z);
  lg_uop *w = bin(g, LG_OP_ADD, bin(g, LG_OP_MUL, bin(g, LG_OP_ADD, bin(g, LG_OP_MUL, z, c1), y), c0), x);
  lg_uop *s3 = st(g, buf(g, LG_DT_INT64, 5), o, ld(g, buf(g, LG_DT_INT64, 6), w));
  lg_uop *sink = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 4, e0, end(g, s2, k), top,
                      node(g, LG_OP_END, LG_DT_VOID, NULL, 4, s3, x, y, z));
  char *text = NULL;
  lg_program *p = build_kernel(ctest_r_, &f, sink, "loops", &text);
  CHECK_MSG(text && strstr(text, "define void @loops(i8** %bufs, i64* %ints, i32 %core_id, i32 %ncores)") &&
                strstr(text, "float* noalias align 64 %data0, float* noalias readonly align 64 %data1") &&
                strstr(text, "i32 %var_n)") && strstr(text, "= icmp slt i32 %ridx0, %var_n") &&
                strstr(text, "= phi float [ %alu") && strstr(text, "alloca i16") && !strstr(text, "@bf16"),
            "%s", text);
  float av[ROWS * K], out[ROWS], big[ROWS * K];
  int16_t xs[K], best = 0;
  int64_t src[T0 * T1 * T2], tr[T0 * T1 * T2];
  for (int e = 0; e < ROWS * K; e++) av[e] = (float)((e * 7919) % 1000) / 7.0f - 50.0f;
  for (int e = 0; e < K; e++) xs[e] = (int16_t)((e * 4099) % 65536 - 32768);
  for (int e = 0; e < T0 * T1 * T2; e++) src[e] = (INT64_C(1) << 40) * e - 3;
  int64_t runs[2] = {ROWS, 5};
  for (int rr = 0; rr < 2; rr++) {
    for (int e = 0; e < ROWS; e++) out[e] = 99.0f;
    for (int e = 0; e < ROWS * K; e++) big[e] = -7.0f;
    void *data[7] = {out, av, big, &best, xs, tr, src};
    int64_t bytes[7] = {sizeof out, sizeof av, sizeof big, sizeof best, sizeof xs, sizeof tr, sizeof src};
    CHECK(run(&f, p, 7, data, bytes, &runs[rr], 1));
    for (int e = 0; e < ROWS; e++) {
      float acc = 0.0f;
      for (int jj = 0; jj < K; jj++) acc += (jj < 2 ? -1.0f : av[e * K + jj - 2]) * 0.5f;
      CHECK_MSG(out[e] == (e < runs[rr] ? acc : 99.0f), "run %d: out[%d] = %g, expected %g", rr, e, out[e], acc);
    }
    int bad = 0;
    for (int e = 0; e < ROWS * K; e++) bad += big[e] != (e % 3 ? -7.0f : av[e] * 2.0f);
    CHECK_INT(bad, 0);
  }
  int16_t want = INT16_MIN;
  for (int e = 0; e < K; e++) want = xs[e] > want ? xs[e] : want;
  CHECK_INT(best, want);
  for (int a0 = 0; a0 < T0; a0++)
    for (int a1 = 0; a1 < T1; a1++)
      for (int a2 = 0; a2 < T2; a2++) CHECK(tr[(a0 * T1 + a1) * T2 + a2] == src[(a2 * T1 + a1) * T0 + a0]);
  lg_free(text);
  lg_program_release(p);
  fx_close(&f);
}

/* ---- float16 and bfloat16 kernels: each operation rounds, as the folding does ------------------- */

CTEST(llvm_half_floats) {
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
  lg_program *p = build_kernel(ctest_r_, &f, sink, "halves", NULL);
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
  lg_program_release(p);
  fx_close(&f);
}

/* ---- IR that does not compile, graphs the renderer refuses --------------------------------------- */

/* compiling src fails with LG_ERR_COMPILE and a message holding each of the strings */
static bool compile_fails(fx *f, const char *src, const char *entry, const char *a, const char *b) {
  lg_program *p = NULL;
  lg_status st = lg_program_compile(f->ctx, f->dev, src, entry, &p);
  const char *m = lg_ctx_error(f->ctx);
  if (st == LG_ERR_COMPILE && !p && strstr(m, a) && (!b || strstr(m, b))) return true;
  printf("\n  status %d: %s", (int)st, m);
  lg_program_release(p);
  return false;
}

CTEST(llvm_errors) {
  fx f;
  REQUIRE(fx_open(&f));
  kg *g = &f.g;
  CHECK(compile_fails(&f, "define void @k(i8** %b) {\nentry:\n  %x = add i32 %y, 1\n  ret void\n}\n", "k",
                      "LLVM: kernel 'k' does not compile (parse):\nk.ll:3:16: error: use of undefined value '%y'",
                      "  %x = add i32 %y, 1"));
  CHECK(compile_fails(&f, "this is not IR", "k", "k.ll:1:1: error: expected top-level entity", NULL));
  CHECK(compile_fails(&f,
                      "define void @k() {\nentry:\n  br label %a\na:\n  %x = add i32 %y, 1\n  br label %b\nb:\n"
                      "  %y = add i32 %x, 1\n  br label %a\n}\n",
                      "k", "(verify):\nInstruction does not dominate all uses!", NULL));
  CHECK(compile_fails(&f, "define void @other() {\n  ret void\n}\n", "k",
                      "LLVM: the kernel source defines no function 'k'", NULL));
  lg_device_stats s;
  lg_device_stats_get(f.dev, &s);
  CHECK_INT(s.compiles, 4);
  /* a missing function is found when the object is linked */
  lg_program *p = NULL;
  CHECK_INT(lg_program_compile(f.ctx, f.dev, "declare void @no_such_function_anywhere()\ndefine void @k() {\n"
                                             "  call void @no_such_function_anywhere()\n  ret void\n}\n",
                               "k", &p),
            LG_ERR_DEVICE);
  CHECK_MSG(strstr(lg_ctx_error(f.ctx), "no_such_function_anywhere"), "%s", lg_ctx_error(f.ctx));
  /* the renderer: a bad name, a load of the wrong dtype, an op the linearizer does not know */
  lg_uop *out = buf(g, LG_DT_FLOAT32, 0), *in = buf(g, LG_DT_FLOAT32, 1), *r = rng(g, 8, 0, 0);
  char *src = NULL;
  lg_uop *ok = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 1, end(g, st(g, out, r, ld(g, in, r)), r));
  CHECK_INT(lg_render_llvm(f.ctx, ok, "not a name", &src), LG_ERR_ARG);
  CHECK_STR(lg_ctx_error(f.ctx), "render LLVM: the kernel name 'not a name' is not a C identifier");
  lg_uop *bad = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 1,
                     end(g, st(g, out, r, node(g, LG_OP_LOAD, LG_DT_INT32, NULL, 1, idx(g, in, r))), r));
  CHECK_INT(lg_render_llvm(f.ctx, bad, "k", &src), LG_ERR_SPEC);
  CHECK_STR(lg_ctx_error(f.ctx), "render LLVM: LOAD int32: loads int32 from a buffer of float32");
  lg_uop *sp = node(g, LG_OP_SPECIAL, LG_DT_INT32, &(lg_arg){.kind = LG_ARG_STR, .s = "core"}, 1, ci(g, LG_DT_INT32, 4));
  bad = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 1, st(g, out, sp, cf(g, LG_DT_FLOAT32, 1.0)));
  CHECK_INT(lg_render_llvm(f.ctx, bad, "k", &src), LG_ERR_SPEC);
  CHECK_STR(lg_ctx_error(f.ctx), "linearize: SPECIAL int32 core is not a kernel op the linearizer knows (docs/kernel_ir.md)");
  CHECK(src == NULL);
  CHECK(!g->bad);
  fx_close(&f);
}

/* ---- the disk cache; programs of one entry name at once ----------------------------------------- */

static const char *const adders[2] = {
    "define void @add(i8** %bufs, i64* %ints, i32 %core_id, i32 %ncores) {\n"
    "  %p = load i8*, i8** %bufs\n  %q = bitcast i8* %p to i32*\n  %v = load i32, i32* %q\n"
    "  %w = add i32 %v, 1\n  store i32 %w, i32* %q\n  ret void\n}\n",
    "declare float @llvm.sin.f32(float)\n"
    "define void @add(i8** %bufs, i64* %ints, i32 %core_id, i32 %ncores) {\n"
    "  %p = load i8*, i8** %bufs\n  %q = bitcast i8* %p to i32*\n  %v = load i32, i32* %q\n"
    "  %f = sitofp i32 %v to float\n  %s = call float @llvm.sin.f32(float %f)\n  %t = fmul float %s, 1000.0\n"
    "  %w = fptosi float %t to i32\n  store i32 %w, i32* %q\n  ret void\n}\n"};

CTEST(llvm_cache) {
  fx f;
  REQUIRE(fx_open(&f));
  lg_program *p[2] = {NULL, NULL};
  for (int k = 0; k < 2; k++) REQUIRE_OK(f.ctx, lg_program_compile(f.ctx, f.dev, adders[k], "add", &p[k]));
  int32_t v = 2;
  void *data[1] = {&v};
  int64_t bytes[1] = {4};
  CHECK(run(&f, p[0], 1, data, bytes, NULL, 0));
  CHECK_INT(v, 3);
  CHECK(run(&f, p[1], 1, data, bytes, NULL, 0));
  CHECK_INT(v, (int32_t)(sinf(3.0f) * 1000.0f));
  for (int k = 0; k < 2; k++) lg_program_release(p[k]);
  /* another context finds it on disk; cut short, the file is compiled again */
  for (int pass = 0; pass < 2; pass++) {
    lg_ctx *ctx2;
    lg_device *dev2;
    REQUIRE(lg_ctx_new(&ctx2) == LG_OK);
    REQUIRE_OK(ctx2, lg_device_get(ctx2, "llvm", &dev2));
    CHECK_STR(lg_device_name(dev2), "LLVM");
    lg_program *q = NULL;
    REQUIRE_OK(ctx2, lg_program_compile(ctx2, dev2, adders[0], "add", &q));
    lg_device_stats s;
    lg_device_stats_get(dev2, &s);
    CHECK_INT(s.disk_hits, pass == 0);
    CHECK_INT(s.compiles, pass == 1);
    lg_buffer *b = NULL;
    v = 41;
    CHECK(lg_buffer_new(ctx2, dev2, 4, &b) == LG_OK && lg_buffer_write(b, 0, &v, 4) == LG_OK &&
          lg_program_launch(ctx2, q, &b, 1, NULL, 0, NULL) == LG_OK && lg_buffer_read(b, 0, &v, 4) == LG_OK);
    CHECK_INT(v, 42);
    lg_buffer_release(b);
    lg_program_release(q);
    lg_ctx_free(ctx2);
    char dir[64];
    snprintf(dir, sizeof dir, "%s/llvm", f.dir);
    DIR *d = opendir(dir);
    int cut = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
      char file[400];
      snprintf(file, sizeof file, "%s/%s", dir, e->d_name);
      if (strstr(e->d_name, ".o")) cut += truncate(file, 100) == 0;
    }
    if (d) closedir(d);
    CHECK_INT(cut, 2);
  }
  fx_close(&f);
}

/* ---- a float MAX reduce (integer keys): NaN wins, -0.0 below 0.0, -inf, in every float dtype ------ */

CTEST(llvm_max_reduce) {
  fx f;
  REQUIRE(fx_open(&f));
  kg *g = &f.g;
  enum { ROWS = 7, K = 4 };
  static const double rows[ROWS][K] = {{1, 5, -2, 3},
                                       {-NAN, 1, 2, 3}, /* the sign bit set, as x86 makes NaNs */
                                       {1, 2, NAN, -INFINITY},
                                       {-INFINITY, -INFINITY, -INFINITY, -INFINITY},
                                       {-0.0, 0.0, -0.0, -1},
                                       {-0.0, -0.0, -3, -INFINITY},
                                       {-7.5, -0.25, -1e30, -3}};
  static const double want[ROWS] = {5, NAN, NAN, -INFINITY, 0.0, -0.0, -0.25};
  lg_dtype dts[4] = {LG_DT_FLOAT32, LG_DT_FLOAT16, LG_DT_BFLOAT16, LG_DT_FLOAT64};
  lg_uop *i = rng(g, ROWS, 0, 0), *j = rng(g, K, 1, 1), *stores[4];
  lg_uop *at = bin(g, LG_OP_ADD, bin(g, LG_OP_MUL, i, ci(g, LG_DT_INT32, K)), j);
  for (int t = 0; t < 4; t++) stores[t] = st(g, buf(g, dts[t], 2 * t), i, red(g, "MAX", ld(g, buf(g, dts[t], 2 * t + 1), at), j));
  lg_uop *sink = node(g, LG_OP_SINK, LG_DT_VOID, NULL, 1,
                      end(g, node(g, LG_OP_GROUP, LG_DT_VOID, NULL, 4, stores[0], stores[1], stores[2], stores[3]), i));
  lg_program *p = build_kernel(ctest_r_, &f, sink, "r_max", NULL);
  unsigned char mem[8][ROWS * K * 8];
  void *data[8];
  int64_t bytes[8];
  for (int t = 0; t < 4; t++) {
    int w = lg_dtype_itemsize(dts[t]);
    for (int e = 0; e < ROWS * K; e++) encode(g, dts[t], 0, rows[e / K][e % K], mem[2 * t + 1] + e * w);
    data[2 * t] = mem[2 * t], data[2 * t + 1] = mem[2 * t + 1];
    bytes[2 * t] = ROWS * w, bytes[2 * t + 1] = ROWS * K * w;
  }
  CHECK(run(&f, p, 8, data, bytes, NULL, 0));
  for (int t = 0; t < 4; t++)
    for (int e = 0; e < ROWS; e++) {
      int64_t gi;
      double got;
      decode(g, dts[t], mem[2 * t] + e * lg_dtype_itemsize(dts[t]), &gi, &got);
      bool ok = isnan(want[e]) ? isnan(got) : got == want[e] && signbit(got) == signbit(want[e]);
      CHECK_MSG(ok, "dtype %d, row %d: %g, expected %g", t, e, got, want[e]);
    }
  lg_program_release(p);
  fx_close(&f);
}
