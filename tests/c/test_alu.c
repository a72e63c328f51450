/* test_alu.c: constant folding (lg_uop_fold) and value conversion (lg_wrap_int, lg_round_float)
 * against the C compiler's own arithmetic on native types: int8_t ... uint64_t, _Float16, float,
 * double. bfloat16 has no native type: its reference is tests/fixtures/bf16_fold.txt, made with
 * torch and exact rational rounding by tests/fixtures/gen_bf16.py. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "ctest.h"
#include "internal.h"

typedef struct {
  uint64_t s;
} rng;

static uint64_t rnd(rng *r) {
  r->s ^= r->s >> 12, r->s ^= r->s << 25, r->s ^= r->s >> 27;
  return r->s * UINT64_C(0x2545F4914F6CDD1D);
}

enum { REF_UNKNOWN, REF_SKIP, REF_NOFOLD, REF_INT, REF_FLOAT };

/* ---- native values -------------------------------------------------------------------------- */

#define TO_BITS(T, x)                   \
  do {                                  \
    T v_ = (T)(x);                      \
    uint64_t b_ = 0;                    \
    memcpy(&b_, &v_, sizeof v_);        \
    return b_;                          \
  } while (0)

/* the bit pattern of a value of dtype dt (little-endian host) */
static uint64_t native_bits(lg_dtype dt, int64_t i, double f) {
  switch (dt) {
  case LG_DT_BOOL: TO_BITS(_Bool, i);
  case LG_DT_INT8: TO_BITS(int8_t, i);
  case LG_DT_INT16: TO_BITS(int16_t, i);
  case LG_DT_INT32: TO_BITS(int32_t, i);
  case LG_DT_INT64: TO_BITS(int64_t, i);
  case LG_DT_UINT8: TO_BITS(uint8_t, i);
  case LG_DT_UINT16: TO_BITS(uint16_t, i);
  case LG_DT_UINT32: TO_BITS(uint32_t, i);
  case LG_DT_UINT64: TO_BITS(uint64_t, i);
  case LG_DT_FLOAT16: TO_BITS(_Float16, f);
  case LG_DT_BFLOAT16: { /* the upper half of the float32 (exact for bfloat16 values) */
    float x = (float)f;
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b >> 16;
  }
  case LG_DT_FLOAT32: TO_BITS(float, f);
  default: TO_BITS(double, f);
  }
}

#define FROM_BITS(T, out)        \
  do {                           \
    T v_;                        \
    memcpy(&v_, &bits, sizeof v_); \
    *(out) = v_;                 \
    return;                      \
  } while (0)

static void native_value(lg_dtype dt, uint64_t bits, int64_t *i, double *f) {
  *i = 0, *f = 0;
  switch (dt) {
  case LG_DT_BOOL: *i = bits & 1; return;
  case LG_DT_INT8: FROM_BITS(int8_t, i);
  case LG_DT_INT16: FROM_BITS(int16_t, i);
  case LG_DT_INT32: FROM_BITS(int32_t, i);
  case LG_DT_INT64: FROM_BITS(int64_t, i);
  case LG_DT_UINT8: FROM_BITS(uint8_t, i);
  case LG_DT_UINT16: FROM_BITS(uint16_t, i);
  case LG_DT_UINT32: FROM_BITS(uint32_t, i);
  case LG_DT_UINT64: FROM_BITS(uint64_t, i);
  case LG_DT_FLOAT16: FROM_BITS(_Float16, f);
  case LG_DT_BFLOAT16: {
    uint32_t b = (uint32_t)(bits & 0xffff) << 16;
    float x;
    memcpy(&x, &b, sizeof x);
    *f = x;
    return;
  }
  case LG_DT_FLOAT32: FROM_BITS(float, f);
  default: FROM_BITS(double, f);
  }
}

/* C's conversion of an int64 to the integer dtype dt */
static int64_t native_wrap(lg_dtype dt, int64_t v) {
  int64_t i;
  double f;
  native_value(dt, native_bits(dt, v, 0), &i, &f);
  return i;
}

static bool native_is_int(lg_dtype dt) { return dt >= LG_DT_BOOL && dt <= LG_DT_UINT64; }
static bool native_unsigned(lg_dtype dt) { return dt >= LG_DT_UINT8 && dt <= LG_DT_UINT64; }
static int native_width(lg_dtype dt) { return 8 * lg_dtype_itemsize(dt); }

static int64_t rand_int(rng *r, lg_dtype dt) {
  int w = native_width(dt);
  uint64_t top = UINT64_C(1) << (w - 1); /* the sign bit: min, max and their neighbours */
  const int64_t edges[] = {0, 1, -1, 2, -2, (int64_t)top, (int64_t)(top - 1), (int64_t)(top + 1),
                           INT64_MIN, INT64_MAX, 7, 8, 31, 32, 63, 64};
  uint64_t k = rnd(r) % 4;
  int64_t v = k == 0 ? edges[rnd(r) % (sizeof edges / sizeof edges[0])]
              : k == 1 ? (int64_t)(rnd(r) % 41) - 20
                       : (int64_t)rnd(r);
  return native_wrap(dt, v);
}

/* a value of the float dtype dt: edges, random bit patterns, or ordinary magnitudes */
static double rand_float(rng *r, lg_dtype dt) {
  static const double edges[] = {0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 3.0, -3.5, INFINITY, -INFINITY, NAN,
                                 DBL_MAX, -DBL_MIN, 4.9e-324, FLT_MAX, FLT_MIN, 1.4e-45, 65504.0,
                                 6.103515625e-05, 5.9604644775390625e-08, -5.9604644775390625e-08,
                                 0.1, 1e10, -1e-10, 2147483648.0, 9.3e18, 1.9e19};
  int64_t i;
  double f;
  uint64_t k = rnd(r) % 10;
  if (k < 2) f = edges[rnd(r) % (sizeof edges / sizeof edges[0])];
  else if (k < 5) f = (rnd(r) & 1 ? -1 : 1) * ldexp(1.0 + (double)(rnd(r) >> 11) * 0x1p-53, (int)(rnd(r) % 17) - 8);
  else if (k < 6) f = (double)((int64_t)(rnd(r) % 2001) - 1000) / 4;
  else native_value(dt, rnd(r), &i, &f);
  native_value(dt, native_bits(dt, 0, f), &i, &f); /* make it a value of dt */
  return f;
}

static bool same_float(double x, double y) { return (isnan(x) && isnan(y)) || memcmp(&x, &y, sizeof x) == 0; }

/* ---- native references ---------------------------------------------------------------------- */

/* UT: the unsigned type the arithmetic wraps in (at least unsigned int, so no promotion to int) */
#define INT_REF(NAME, T, UT, TMIN)                                                            \
  static int NAME(int32_t op, T a, T b, T c, int64_t *r) {                                    \
    int64_t sb = (int64_t)b, bits = 8 * (int64_t)sizeof(T);                                   \
    switch (op) {                                                                             \
    case LG_OP_ADD: *r = (T)((UT)a + (UT)b); break;                                           \
    case LG_OP_SUB: *r = (T)((UT)a - (UT)b); break;                                           \
    case LG_OP_MUL: *r = (T)((UT)a * (UT)b); break;                                           \
    case LG_OP_MULACC: *r = (T)((UT)a * (UT)b + (UT)c); break;                                \
    case LG_OP_NEG: *r = (T)(-(UT)a); break;                                                  \
    case LG_OP_IDIV:                                                                          \
      if (b == 0) return REF_NOFOLD;                                                          \
      *r = a == TMIN && b == (T)-1 ? a : (T)(a / b); /* C leaves MIN / -1 undefined */        \
      break;                                                                                  \
    case LG_OP_MOD:                                                                           \
      if (b == 0) return REF_NOFOLD;                                                          \
      *r = a == TMIN && b == (T)-1 ? 0 : (T)(a % b);                                          \
      break;                                                                                  \
    case LG_OP_MAX: *r = a > b ? a : b; break;                                                \
    case LG_OP_CMPLT: *r = a < b; break;                                                      \
    case LG_OP_CMPNE: *r = a != b; break;                                                     \
    case LG_OP_CMPEQ: *r = a == b; break;                                                     \
    case LG_OP_AND: *r = (T)(a & b); break;                                                   \
    case LG_OP_OR: *r = (T)(a | b); break;                                                    \
    case LG_OP_XOR: *r = (T)(a ^ b); break;                                                   \
    case LG_OP_SHL:                                                                           \
      if (sb < 0 || sb >= bits) return REF_NOFOLD;                                            \
      *r = (T)((UT)a << sb);                                                                  \
      break;                                                                                  \
    case LG_OP_SHR:                                                                           \
      if (sb < 0 || sb >= bits) return REF_NOFOLD;                                            \
      *r = (T)(a >> sb);                                                                      \
      break;                                                                                  \
    default: return REF_UNKNOWN;                                                              \
    }                                                                                         \
    return REF_INT;                                                                           \
  }

INT_REF(ref_i8, int8_t, unsigned, INT8_MIN)
INT_REF(ref_i16, int16_t, unsigned, INT16_MIN)
INT_REF(ref_i32, int32_t, uint32_t, INT32_MIN)
INT_REF(ref_i64, int64_t, uint64_t, INT64_MIN)
INT_REF(ref_u8, uint8_t, unsigned, 0)
INT_REF(ref_u16, uint16_t, unsigned, 0)
INT_REF(ref_u32, uint32_t, uint32_t, 0)
INT_REF(ref_u64, uint64_t, uint64_t, 0)

static int ref_bool(int32_t op, _Bool a, _Bool b, int64_t *r) {
  switch (op) {
  case LG_OP_AND: *r = a & b; break;
  case LG_OP_OR: *r = a | b; break;
  case LG_OP_XOR: *r = a ^ b; break;
  case LG_OP_MAX: *r = a > b ? a : b; break;
  case LG_OP_CMPLT: *r = a < b; break;
  case LG_OP_CMPNE: *r = a != b; break;
  case LG_OP_CMPEQ: *r = a == b; break;
  default: return REF_UNKNOWN;
  }
  return REF_INT;
}

static int ref_int(lg_dtype dt, int32_t op, int64_t a, int64_t b, int64_t c, int64_t *r) {
  switch (dt) {
  case LG_DT_BOOL: return ref_bool(op, (_Bool)a, (_Bool)b, r);
  case LG_DT_INT8: return ref_i8(op, (int8_t)a, (int8_t)b, (int8_t)c, r);
  case LG_DT_INT16: return ref_i16(op, (int16_t)a, (int16_t)b, (int16_t)c, r);
  case LG_DT_INT32: return ref_i32(op, (int32_t)a, (int32_t)b, (int32_t)c, r);
  case LG_DT_INT64: return ref_i64(op, a, b, c, r);
  case LG_DT_UINT8: return ref_u8(op, (uint8_t)a, (uint8_t)b, (uint8_t)c, r);
  case LG_DT_UINT16: return ref_u16(op, (uint16_t)a, (uint16_t)b, (uint16_t)c, r);
  case LG_DT_UINT32: return ref_u32(op, (uint32_t)a, (uint32_t)b, (uint32_t)c, r);
  default: return ref_u64(op, (uint64_t)a, (uint64_t)b, (uint64_t)c, r);
  }
}

/* Each operation is assigned to a T, so it rounds to T once (as _Float16 does with excess
 * precision: computed in float, rounded at the assignment). */
#define FLOAT_REF(NAME, T, SQRT, TRUNC)                                                        \
  static int NAME(int32_t op, T a, T b, T c, double *r) {                                      \
    T t;                                                                                       \
    switch (op) {                                                                              \
    case LG_OP_ADD: t = a + b; break;                                                          \
    case LG_OP_SUB: t = a - b; break;                                                          \
    case LG_OP_MUL: t = a * b; break;                                                          \
    case LG_OP_FDIV: t = a / b; break;                                                         \
    case LG_OP_MULACC: t = a * b, t = t + c; break;                                            \
    case LG_OP_NEG: t = -a; break;                                                             \
    case LG_OP_RECIPROCAL: t = (T)1 / a; break;                                                \
    case LG_OP_SQRT: t = (T)SQRT(a); break;                                                    \
    case LG_OP_TRUNC: t = (T)TRUNC(a); break;                                                  \
    case LG_OP_EXP2: t = (T)exp2((double)a); break;                                            \
    case LG_OP_LOG2: t = (T)log2((double)a); break;                                            \
    case LG_OP_SIN: t = (T)sin((double)a); break;                                              \
    case LG_OP_POW: t = (T)pow((double)a, (double)b); break;                                   \
    case LG_OP_MAX: /* NaN propagates, -0.0 < 0.0 */                                           \
      t = isnan((double)a) || isnan((double)b) ? (T)NAN                                        \
          : a > b || (a == b && !signbit((double)a)) ? a : b;                                  \
      break;                                                                                   \
    case LG_OP_CMPLT: *r = a < b; return REF_INT;                                              \
    case LG_OP_CMPNE: *r = a != b; return REF_INT;                                             \
    case LG_OP_CMPEQ: *r = a == b; return REF_INT;                                             \
    default: return REF_UNKNOWN;                                                               \
    }                                                                                          \
    *r = (double)t;                                                                            \
    return REF_FLOAT;                                                                          \
  }

FLOAT_REF(ref_f16, _Float16, sqrtf, truncf)
FLOAT_REF(ref_f32, float, sqrtf, truncf)
FLOAT_REF(ref_f64, double, sqrt, trunc)

static int ref_float(lg_dtype dt, int32_t op, double a, double b, double c, double *r) {
  switch (dt) {
  case LG_DT_FLOAT16: return ref_f16(op, (_Float16)a, (_Float16)b, (_Float16)c, r);
  case LG_DT_FLOAT32: return ref_f32(op, (float)a, (float)b, (float)c, r);
  case LG_DT_FLOAT64: return ref_f64(op, a, b, c, r);
  default: /* bfloat16: ops whose result is an operand or exact; the rest is in the fixture */
    if (op == LG_OP_NEG || op == LG_OP_TRUNC || op == LG_OP_MAX || lg_op_has(op, LG_OPF_CMP))
      return ref_f32(op, (float)a, (float)b, (float)c, r);
    return REF_SKIP;
  }
}

/* ---- building and folding ------------------------------------------------------------------- */

static lg_uop *mkconst(lg_ctx *ctx, lg_dtype dt, int64_t i, double f) {
  lg_uop *u = NULL;
  if (lg_dt_is_float(dt)) lg_uop_const_float(ctx, dt, f, &u);
  else lg_uop_const_int(ctx, dt, i, &u);
  return u;
}

/* op(dt, src...) folded: a new reference or NULL; sources are consumed */
static lg_uop *fold_of(lg_ctx *ctx, int32_t op, lg_dtype dt, lg_uop **src, int32_t n) {
  lg_uop *u = NULL, *out = NULL;
  if (lg_uop_new(ctx, op, dt, src, n, NULL, &u) == LG_OK) {
    if (lg_uop_fold(ctx, u, &out) != LG_OK) out = NULL;
    lg_uop_release(u);
  }
  for (int32_t i = 0; i < n; i++) lg_uop_release(src[i]);
  return out;
}

static lg_uop *fold1(lg_ctx *ctx, int32_t op, lg_dtype dt, lg_uop *a) { return fold_of(ctx, op, dt, &a, 1); }
static lg_uop *fold2(lg_ctx *ctx, int32_t op, lg_dtype dt, lg_uop *a, lg_uop *b) {
  lg_uop *s[2] = {a, b};
  return fold_of(ctx, op, dt, s, 2);
}

static int64_t int_of(const lg_uop *u) { return lg_uop_arg(u)->i; }
static double float_of(const lg_uop *u) { return lg_uop_arg(u)->f; }

static const lg_dtype int_dts[] = {LG_DT_BOOL, LG_DT_INT8, LG_DT_INT16, LG_DT_INT32, LG_DT_INT64,
                                   LG_DT_UINT8, LG_DT_UINT16, LG_DT_UINT32, LG_DT_UINT64};
static const lg_dtype float_dts[] = {LG_DT_FLOAT16, LG_DT_BFLOAT16, LG_DT_FLOAT32, LG_DT_FLOAT64};

static uint32_t class_flag(lg_dtype dt) {
  char k = lg_dtype_kind(dt);
  return k == 'f' ? LG_OPF_FLOATOK : k == 'b' ? LG_OPF_BOOLOK : LG_OPF_INTOK;
}

/* Folds every ALU op on random operands of dt; checks the CONST against the reference. */
static void fold_all_ops(ctest_run *ctest_r_, lg_ctx *ctx, lg_dtype dt, rng *r, int iters) {
  bool isf = lg_dt_is_float(dt);
  for (int32_t op = 0; op < LG_OP__COUNT; op++) {
    if (!lg_op_has(op, LG_OPF_ALU)) continue;
    int32_t n = lg_op_min_src(op);
    bool allowed = lg_op_has(op, class_flag(dt)), cmp = lg_op_has(op, LG_OPF_CMP);
    for (int it = 0; it < iters; it++) {
      int64_t iv[3] = {0};
      double fv[3] = {0};
      for (int k = 0; k < 3; k++) {
        if (isf) fv[k] = rand_float(r, dt);
        else iv[k] = rand_int(r, dt);
      }
      if (!isf && (op == LG_OP_SHL || op == LG_OP_SHR) && rnd(r) % 4)
        iv[1] = native_wrap(dt, (int64_t)(rnd(r) % (uint64_t)(native_width(dt) + 4)) - 2);
      lg_uop *src[3];
      int kind;
      int64_t ri = 0;
      double rf = 0;
      if (op == LG_OP_WHERE) {
        bool c = rnd(r) & 1;
        src[0] = mkconst(ctx, LG_DT_BOOL, c, 0);
        src[1] = mkconst(ctx, dt, iv[0], fv[0]);
        src[2] = mkconst(ctx, dt, iv[1], fv[1]);
        kind = isf ? REF_FLOAT : REF_INT;
        ri = c ? iv[0] : iv[1], rf = c ? fv[0] : fv[1];
      } else {
        for (int32_t k = 0; k < n; k++) src[k] = mkconst(ctx, dt, iv[k], fv[k]);
        kind = isf ? ref_float(dt, op, fv[0], fv[1], fv[2], &rf) : ref_int(dt, op, iv[0], iv[1], iv[2], &ri);
        if (isf && kind == REF_INT) ri = (int64_t)rf;
      }
      if (kind == REF_SKIP) {
        for (int32_t k = 0; k < n; k++) lg_uop_release(src[k]);
        continue;
      }
      CHECK_MSG(!allowed || kind != REF_UNKNOWN, "%s: no reference for %s", lg_op_name(op), isf ? "float" : "int");
      lg_uop *out = fold_of(ctx, op, cmp ? LG_DT_BOOL : dt, src, n);
      char dn[32];
      lg_dtype_name(dt, dn, sizeof dn);
      if (!allowed || kind == REF_NOFOLD || kind == REF_UNKNOWN) {
        CHECK_MSG(!out, "%s %s (%lld, %lld | %a, %a) folded but should not", lg_op_name(op), dn,
                  (long long)iv[0], (long long)iv[1], fv[0], fv[1]);
      } else if (!out) {
        CHECK_MSG(out, "%s %s (%lld, %lld, %lld | %a, %a, %a) did not fold", lg_op_name(op), dn, (long long)iv[0],
                  (long long)iv[1], (long long)iv[2], fv[0], fv[1], fv[2]);
      } else if (kind == REF_INT) {
        CHECK_MSG(int_of(out) == ri, "%s %s (%lld, %lld, %lld | %a, %a, %a) = %lld, expected %lld", lg_op_name(op),
                  dn, (long long)iv[0], (long long)iv[1], (long long)iv[2], fv[0], fv[1], fv[2],
                  (long long)int_of(out), (long long)ri);
      } else {
        CHECK_MSG(same_float(float_of(out), rf), "%s %s (%a, %a, %a) = %a, expected %a", lg_op_name(op), dn, fv[0],
                  fv[1], fv[2], float_of(out), rf);
      }
      lg_uop_release(out);
    }
  }
}

CTEST(fold_int_ops_match_c) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  rng r = {0x1234567};
  for (size_t d = 0; d < sizeof int_dts / sizeof int_dts[0]; d++) fold_all_ops(ctest_r_, ctx, int_dts[d], &r, 400);
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ctx_free(ctx);
}

CTEST(fold_float_ops_match_c) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  rng r = {0x7654321};
  for (size_t d = 0; d < sizeof float_dts / sizeof float_dts[0]; d++) fold_all_ops(ctest_r_, ctx, float_dts[d], &r, 400);
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ctx_free(ctx);
}

/* ---- CAST and BITCAST ----------------------------------------------------------------------- */

/* C's float -> integer conversion, or REF_NOFOLD where C leaves it undefined (out of range) */
static int ref_float_to_int(lg_dtype to, double f, int64_t *ri) {
  long double t = truncl((long double)f), lo = 0, hi;
  switch (to) {
  case LG_DT_INT8: lo = INT8_MIN, hi = INT8_MAX; break;
  case LG_DT_INT16: lo = INT16_MIN, hi = INT16_MAX; break;
  case LG_DT_INT32: lo = INT32_MIN, hi = INT32_MAX; break;
  case LG_DT_INT64: lo = INT64_MIN, hi = INT64_MAX; break;
  case LG_DT_UINT8: hi = UINT8_MAX; break;
  case LG_DT_UINT16: hi = UINT16_MAX; break;
  case LG_DT_UINT32: hi = UINT32_MAX; break;
  default: hi = UINT64_MAX; break;
  }
  if (!(t >= lo && t <= hi)) return REF_NOFOLD;
  if (to == LG_DT_UINT64) *ri = (int64_t)(uint64_t)f;
  else if (native_unsigned(to)) *ri = (int64_t)(uint32_t)f;
  else *ri = (int64_t)f;
  return REF_INT;
}

static double native_to_float(lg_dtype to, double f) {
  switch (to) {
  case LG_DT_FLOAT16: return (_Float16)f;
  case LG_DT_FLOAT32: return (float)f;
  default: return f;
  }
}

static double native_int_to_float(lg_dtype to, lg_dtype from, int64_t i) {
  bool u = native_unsigned(from);
  switch (to) {
  case LG_DT_FLOAT16: return u ? (_Float16)(uint64_t)i : (_Float16)i;
  case LG_DT_FLOAT32: return u ? (float)(uint64_t)i : (float)i;
  default: return u ? (double)(uint64_t)i : (double)i;
  }
}

static int ref_cast(lg_dtype to, lg_dtype from, int64_t i, double f, int64_t *ri, double *rf) {
  bool ff = lg_dt_is_float(from);
  if (to == LG_DT_BOOL) return *ri = ff ? (_Bool)f : (_Bool)i, REF_INT;
  if (native_is_int(to)) return ff ? ref_float_to_int(to, f, ri) : (*ri = native_wrap(to, i), REF_INT);
  if (to == LG_DT_BFLOAT16) /* exact cases only; the fixture has the rest */
    return from == LG_DT_BFLOAT16 || from == LG_DT_BOOL ? (*rf = ff ? f : (double)i, REF_FLOAT) : REF_SKIP;
  *rf = ff ? native_to_float(to, f) : native_int_to_float(to, from, i);
  return REF_FLOAT;
}

CTEST(fold_cast_and_bitcast_match_c) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  rng r = {0xabcdef};
  for (lg_dtype from = LG_DT_BOOL; from < LG_DT__COUNT; from++) {
    for (lg_dtype to = LG_DT_BOOL; to < LG_DT__COUNT; to++) {
      char fn[32], tn[32];
      lg_dtype_name(from, fn, sizeof fn);
      lg_dtype_name(to, tn, sizeof tn);
      for (int it = 0; it < 300; it++) {
        int64_t i = 0, ri = 0;
        double f = 0, rf = 0;
        if (lg_dt_is_float(from)) f = rand_float(&r, from);
        else i = rand_int(&r, from);
        int kind = ref_cast(to, from, i, f, &ri, &rf);
        lg_uop *out = kind == REF_SKIP ? NULL : fold1(ctx, LG_OP_CAST, to, mkconst(ctx, from, i, f));
        if (kind == REF_NOFOLD) CHECK_MSG(!out, "CAST %s -> %s of %a folded", fn, tn, f);
        else if (kind == REF_INT) CHECK_MSG(out && int_of(out) == ri, "CAST %s -> %s of (%lld | %a) = %lld, expected %lld",
                                            fn, tn, (long long)i, f, out ? (long long)int_of(out) : -1LL, (long long)ri);
        else if (kind == REF_FLOAT) CHECK_MSG(out && same_float(float_of(out), rf), "CAST %s -> %s of (%lld | %a) = %a, expected %a",
                                              fn, tn, (long long)i, f, out ? float_of(out) : 0.0, rf);
        lg_uop_release(out);

        /* BITCAST: same size, not to bool */
        out = fold1(ctx, LG_OP_BITCAST, to, mkconst(ctx, from, i, f));
        if (lg_dtype_itemsize(to) != lg_dtype_itemsize(from) || to == LG_DT_BOOL) {
          CHECK_MSG(!out, "BITCAST %s -> %s folded", fn, tn);
        } else {
          native_value(to, native_bits(from, i, isnan(f) ? NAN : f), &ri, &rf); /* CONST keeps one NaN */
          bool ok = out && (lg_dt_is_float(to) ? same_float(float_of(out), rf) : int_of(out) == ri);
          CHECK_MSG(ok, "BITCAST %s -> %s of (%lld | %a) wrong", fn, tn, (long long)i, f);
        }
        lg_uop_release(out);
      }
    }
  }
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ctx_free(ctx);
}

/* ---- named edge cases ----------------------------------------------------------------------- */

static lg_uop *ci(lg_ctx *ctx, lg_dtype dt, int64_t v) { return mkconst(ctx, dt, v, 0); }
static lg_uop *cf(lg_ctx *ctx, lg_dtype dt, double v) { return mkconst(ctx, dt, 0, v); }

/* the folded int value, or a marker when it did not fold */
static int64_t foldi(lg_uop *u) {
  int64_t v = u ? int_of(u) : INT64_C(0x7eadbeef7eadbeef);
  lg_uop_release(u);
  return v;
}

CTEST(fold_int_edges) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  const int64_t NO = INT64_C(0x7eadbeef7eadbeef);
  CHECK_INT(foldi(fold2(ctx, LG_OP_IDIV, LG_DT_INT32, ci(ctx, LG_DT_INT32, INT32_MIN), ci(ctx, LG_DT_INT32, -1))), INT32_MIN);
  CHECK_INT(foldi(fold2(ctx, LG_OP_IDIV, LG_DT_INT64, ci(ctx, LG_DT_INT64, INT64_MIN), ci(ctx, LG_DT_INT64, -1))), INT64_MIN);
  CHECK_INT(foldi(fold2(ctx, LG_OP_MOD, LG_DT_INT64, ci(ctx, LG_DT_INT64, INT64_MIN), ci(ctx, LG_DT_INT64, -1))), 0);
  CHECK_INT(foldi(fold2(ctx, LG_OP_IDIV, LG_DT_INT32, ci(ctx, LG_DT_INT32, 7), ci(ctx, LG_DT_INT32, 0))), NO);
  CHECK_INT(foldi(fold2(ctx, LG_OP_MOD, LG_DT_UINT8, ci(ctx, LG_DT_UINT8, 7), ci(ctx, LG_DT_UINT8, 0))), NO);
  CHECK_INT(foldi(fold2(ctx, LG_OP_IDIV, LG_DT_INT32, ci(ctx, LG_DT_INT32, -7), ci(ctx, LG_DT_INT32, 2))), -3);
  CHECK_INT(foldi(fold2(ctx, LG_OP_MOD, LG_DT_INT32, ci(ctx, LG_DT_INT32, -7), ci(ctx, LG_DT_INT32, 2))), -1);
  CHECK_INT(foldi(fold2(ctx, LG_OP_MOD, LG_DT_INT32, ci(ctx, LG_DT_INT32, 7), ci(ctx, LG_DT_INT32, -2))), 1);
  CHECK_INT(foldi(fold2(ctx, LG_OP_ADD, LG_DT_INT32, ci(ctx, LG_DT_INT32, INT32_MAX), ci(ctx, LG_DT_INT32, 1))), INT32_MIN);
  CHECK_INT(foldi(fold2(ctx, LG_OP_MUL, LG_DT_INT64, ci(ctx, LG_DT_INT64, INT64_MAX), ci(ctx, LG_DT_INT64, 2))), -2);
  CHECK_INT(foldi(fold2(ctx, LG_OP_SHL, LG_DT_INT32, ci(ctx, LG_DT_INT32, 1), ci(ctx, LG_DT_INT32, 32))), NO);
  CHECK_INT(foldi(fold2(ctx, LG_OP_SHL, LG_DT_INT32, ci(ctx, LG_DT_INT32, 1), ci(ctx, LG_DT_INT32, -1))), NO);
  CHECK_INT(foldi(fold2(ctx, LG_OP_SHL, LG_DT_INT32, ci(ctx, LG_DT_INT32, 1), ci(ctx, LG_DT_INT32, 31))), INT32_MIN);
  CHECK_INT(foldi(fold2(ctx, LG_OP_SHR, LG_DT_INT8, ci(ctx, LG_DT_INT8, -128), ci(ctx, LG_DT_INT8, 7))), -1);
  CHECK_INT(foldi(fold2(ctx, LG_OP_SHR, LG_DT_UINT8, ci(ctx, LG_DT_UINT8, 200), ci(ctx, LG_DT_UINT8, 7))), 1);
  /* a shift amount of another integer dtype, read with its own signedness */
  CHECK_INT(foldi(fold2(ctx, LG_OP_SHL, LG_DT_INT32, ci(ctx, LG_DT_INT32, 3), ci(ctx, LG_DT_UINT8, 4))), 48);
  CHECK_INT(foldi(fold2(ctx, LG_OP_SHR, LG_DT_INT64, ci(ctx, LG_DT_INT64, -1), ci(ctx, LG_DT_UINT64, -1))), NO);
  CHECK_INT(foldi(fold2(ctx, LG_OP_CMPLT, LG_DT_BOOL, ci(ctx, LG_DT_UINT32, 1), ci(ctx, LG_DT_UINT32, -1))), 1);
  CHECK_INT(foldi(fold2(ctx, LG_OP_CMPLT, LG_DT_BOOL, ci(ctx, LG_DT_UINT64, -1), ci(ctx, LG_DT_UINT64, 1))), 0);
  CHECK_INT(foldi(fold2(ctx, LG_OP_IDIV, LG_DT_UINT64, ci(ctx, LG_DT_UINT64, -1), ci(ctx, LG_DT_UINT64, 2))), INT64_MAX);
  CHECK_INT(foldi(fold2(ctx, LG_OP_MAX, LG_DT_UINT64, ci(ctx, LG_DT_UINT64, -1), ci(ctx, LG_DT_UINT64, 2))), -1);
  CHECK_INT(foldi(fold1(ctx, LG_OP_NEG, LG_DT_INT8, ci(ctx, LG_DT_INT8, -128))), -128);

  /* what is not folded: a non-CONST source, mixed dtypes, a vector, a comparison typed int32 */
  lg_uop *v = NULL;
  lg_arg var = {.kind = LG_ARG_STR_INTS, .n = 2, .s = "i", .ints = (const int64_t[]){0, 9}};
  REQUIRE_OK(ctx, lg_uop_new(ctx, LG_OP_DEFINE_VAR, LG_DT_INT32, NULL, 0, &var, &v));
  CHECK_INT(foldi(fold2(ctx, LG_OP_ADD, LG_DT_INT32, v, ci(ctx, LG_DT_INT32, 1))), NO);
  CHECK_INT(foldi(fold2(ctx, LG_OP_ADD, LG_DT_INT32, ci(ctx, LG_DT_INT32, 1), ci(ctx, LG_DT_INT8, 1))), NO);
  CHECK_INT(foldi(fold2(ctx, LG_OP_CMPLT, LG_DT_INT32, ci(ctx, LG_DT_INT32, 1), ci(ctx, LG_DT_INT32, 2))), NO);
  lg_uop *one = ci(ctx, LG_DT_INT32, 1), *vec = NULL, *srcs[2] = {one, one};
  REQUIRE_OK(ctx, lg_uop_new(ctx, LG_OP_VECTORIZE, lg_dtype_vec(LG_DT_INT32, 2), srcs, 2, NULL, &vec));
  lg_uop_release(one);
  CHECK(fold2(ctx, LG_OP_ADD, lg_dtype_vec(LG_DT_INT32, 2), lg_uop_retain(vec), vec) == NULL);
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ctx_free(ctx);
}

static double foldf(lg_uop *u) {
  double v = u ? float_of(u) : -12345.0;
  lg_uop_release(u);
  return v;
}

CTEST(fold_float_edges) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  const int64_t NO = INT64_C(0x7eadbeef7eadbeef);
  volatile float a = 0.1f, b = 0.2f;
  CHECK(foldf(fold2(ctx, LG_OP_ADD, LG_DT_FLOAT32, cf(ctx, LG_DT_FLOAT32, a), cf(ctx, LG_DT_FLOAT32, b))) == (float)(a + b));
  CHECK(same_float(foldf(fold2(ctx, LG_OP_ADD, LG_DT_FLOAT32, cf(ctx, LG_DT_FLOAT32, -0.0), cf(ctx, LG_DT_FLOAT32, -0.0))), -0.0));
  CHECK(same_float(foldf(fold2(ctx, LG_OP_MUL, LG_DT_FLOAT64, cf(ctx, LG_DT_FLOAT64, 0.0), cf(ctx, LG_DT_FLOAT64, -1))), -0.0));
  CHECK(isnan(foldf(fold1(ctx, LG_OP_SQRT, LG_DT_FLOAT32, cf(ctx, LG_DT_FLOAT32, -1)))));
  CHECK(foldf(fold1(ctx, LG_OP_RECIPROCAL, LG_DT_FLOAT16, cf(ctx, LG_DT_FLOAT16, 0))) == INFINITY);
  CHECK(foldf(fold2(ctx, LG_OP_ADD, LG_DT_FLOAT16, cf(ctx, LG_DT_FLOAT16, 65504), cf(ctx, LG_DT_FLOAT16, 16))) == INFINITY);
  CHECK(foldf(fold2(ctx, LG_OP_ADD, LG_DT_FLOAT16, cf(ctx, LG_DT_FLOAT16, 65504), cf(ctx, LG_DT_FLOAT16, 8))) == 65504);
  CHECK(foldf(fold2(ctx, LG_OP_MAX, LG_DT_FLOAT32, cf(ctx, LG_DT_FLOAT32, -0.0), cf(ctx, LG_DT_FLOAT32, 0.0))) == 0.0);
  CHECK(isnan(foldf(fold2(ctx, LG_OP_MAX, LG_DT_FLOAT32, cf(ctx, LG_DT_FLOAT32, NAN), cf(ctx, LG_DT_FLOAT32, 1)))));
  CHECK_INT(foldi(fold2(ctx, LG_OP_CMPNE, LG_DT_BOOL, cf(ctx, LG_DT_FLOAT32, NAN), cf(ctx, LG_DT_FLOAT32, NAN))), 1);
  CHECK_INT(foldi(fold2(ctx, LG_OP_CMPLT, LG_DT_BOOL, cf(ctx, LG_DT_FLOAT32, -0.0), cf(ctx, LG_DT_FLOAT32, 0.0))), 0);
  /* float -> int: truncation; NaN and out of range are not folded */
  CHECK_INT(foldi(fold1(ctx, LG_OP_CAST, LG_DT_INT32, cf(ctx, LG_DT_FLOAT32, -2.75))), -2);
  CHECK_INT(foldi(fold1(ctx, LG_OP_CAST, LG_DT_UINT8, cf(ctx, LG_DT_FLOAT32, -0.75))), 0);
  CHECK_INT(foldi(fold1(ctx, LG_OP_CAST, LG_DT_UINT8, cf(ctx, LG_DT_FLOAT32, -1.5))), NO);
  CHECK_INT(foldi(fold1(ctx, LG_OP_CAST, LG_DT_INT32, cf(ctx, LG_DT_FLOAT32, NAN))), NO);
  CHECK_INT(foldi(fold1(ctx, LG_OP_CAST, LG_DT_INT32, cf(ctx, LG_DT_FLOAT64, 2147483648.0))), NO);
  CHECK_INT(foldi(fold1(ctx, LG_OP_CAST, LG_DT_INT64, cf(ctx, LG_DT_FLOAT64, 9223372036854775808.0))), NO);
  CHECK_INT(foldi(fold1(ctx, LG_OP_CAST, LG_DT_UINT64, cf(ctx, LG_DT_FLOAT64, 9223372036854775808.0))), INT64_MIN);
  CHECK_INT(foldi(fold1(ctx, LG_OP_CAST, LG_DT_BOOL, cf(ctx, LG_DT_FLOAT64, NAN))), 1);
  CHECK_INT(foldi(fold1(ctx, LG_OP_CAST, LG_DT_BOOL, cf(ctx, LG_DT_FLOAT64, -0.0))), 0);
  /* int -> float rounds once, also where a stop at double would round twice */
  CHECK(foldf(fold1(ctx, LG_OP_CAST, LG_DT_BFLOAT16, ci(ctx, LG_DT_INT64, (INT64_C(1) << 60) + (INT64_C(1) << 52) + 1))) ==
        ldexp(1 + 0x1p-7, 60));
  CHECK(foldf(fold1(ctx, LG_OP_CAST, LG_DT_FLOAT32, ci(ctx, LG_DT_UINT64, -1))) == 0x1p64);
  /* BITCAST reads float16 and bfloat16 as their 16-bit patterns */
  CHECK_INT(foldi(fold1(ctx, LG_OP_BITCAST, LG_DT_INT16, cf(ctx, LG_DT_FLOAT16, 1.0))), 0x3c00);
  CHECK_INT(foldi(fold1(ctx, LG_OP_BITCAST, LG_DT_UINT16, cf(ctx, LG_DT_BFLOAT16, -2.0))), 0xc000);
  CHECK(foldf(fold1(ctx, LG_OP_BITCAST, LG_DT_BFLOAT16, ci(ctx, LG_DT_INT16, 0x3f80))) == 1.0);
  CHECK(foldf(fold1(ctx, LG_OP_BITCAST, LG_DT_FLOAT16, ci(ctx, LG_DT_UINT16, 0x0001))) == 0x1p-24);
  CHECK(isnan(foldf(fold1(ctx, LG_OP_BITCAST, LG_DT_FLOAT16, ci(ctx, LG_DT_INT16, 0x7c01)))));
  CHECK_INT(foldi(fold1(ctx, LG_OP_BITCAST, LG_DT_INT32, cf(ctx, LG_DT_FLOAT32, -0.0))), INT32_MIN);
  CHECK_INT(foldi(fold1(ctx, LG_OP_BITCAST, LG_DT_INT8, ci(ctx, LG_DT_BOOL, 1))), 1);
  CHECK_INT(foldi(fold1(ctx, LG_OP_BITCAST, LG_DT_BOOL, ci(ctx, LG_DT_INT8, 1))), NO);
  /* ops outside their dtype class are not folded */
  CHECK_INT(foldi(fold2(ctx, LG_OP_IDIV, LG_DT_FLOAT32, cf(ctx, LG_DT_FLOAT32, 1), cf(ctx, LG_DT_FLOAT32, 2))), NO);
  CHECK_INT(foldi(fold1(ctx, LG_OP_SQRT, LG_DT_INT32, ci(ctx, LG_DT_INT32, 4))), NO);
  CHECK_INT(foldi(fold2(ctx, LG_OP_ADD, LG_DT_BOOL, ci(ctx, LG_DT_BOOL, 1), ci(ctx, LG_DT_BOOL, 1))), NO);
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ctx_free(ctx);
}

/* ---- conversions ---------------------------------------------------------------------------- */

CTEST(wrap_and_round_match_c) {
  rng r = {42};
  for (int it = 0; it < 200000; it++) {
    int64_t v = (int64_t)rnd(&r);
    for (size_t d = 0; d < sizeof int_dts / sizeof int_dts[0]; d++)
      CHECK_MSG(lg_wrap_int(int_dts[d], v) == native_wrap(int_dts[d], v), "wrap %lld to dtype %u", (long long)v, int_dts[d]);
    /* doubles around float16's range; a third of them are float16 ties, exact or off by 2^-40 */
    double f = ldexp((double)(rnd(&r) >> 11), (int)(rnd(&r) % 60) - 90);
    if (it % 3 == 0) {
      f = ldexp((double)(2048 + rnd(&r) % 2048), (int)(rnd(&r) % 50) - 36);
      f += (double)((it / 3) % 3 - 1) * ldexp(f, -40);
    }
    if (it % 2) f = -f;
    CHECK_MSG(same_float(lg_round_float(LG_DT_FLOAT16, f), (double)(_Float16)f), "float16 of %a", f);
    CHECK_MSG(same_float(lg_round_float(LG_DT_FLOAT32, f), (double)(float)f), "float32 of %a", f);
    CHECK_MSG(same_float(lg_round_float(LG_DT_FLOAT64, f), f), "float64 of %a", f);
  }
  const double specials[] = {INFINITY, -INFINITY, 0.0, -0.0, 65520.0, -65520.0, 65519.99, 0x1p-25, 0x1.8p-25, 0x1p-26,
                             4.9e-324, DBL_MAX};
  for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
    CHECK_MSG(same_float(lg_round_float(LG_DT_FLOAT16, specials[i]), (double)(_Float16)specials[i]), "float16 of %a", specials[i]);
  CHECK(isnan(lg_round_float(LG_DT_FLOAT16, NAN)) && isnan(lg_round_float(LG_DT_BFLOAT16, -NAN)));
}

static double bf16(uint32_t bits) {
  int64_t i;
  double f;
  native_value(LG_DT_BFLOAT16, bits, &i, &f);
  return f;
}

static double f64_of_bits(uint64_t bits) {
  double d;
  memcpy(&d, &bits, sizeof d);
  return d;
}

CTEST(bfloat16_matches_torch_fixture) {
  FILE *fp = fopen("tests/fixtures/bf16_fold.txt", "r");
  REQUIRE(fp != NULL);
  lg_ctx *ctx;
  if (lg_ctx_new(&ctx) != LG_OK) {
    fclose(fp);
    REQUIRE(0);
  }
  char line[256], name[16], x[32], y[32], z[32];
  int lines = 0;
  while (fgets(line, sizeof line, fp)) {
    if (line[0] == '#') continue;
    int n = sscanf(line, "%15s %31s %31s %31s", name, x, y, z);
    uint64_t a = strtoull(x, NULL, 16), b = n > 2 ? strtoull(y, NULL, 16) : 0, c = n > 3 ? strtoull(z, NULL, 16) : 0;
    double got, want;
    static const char *const binops[] = {"add", "sub", "mul", "div"};
    static const int32_t binop_ids[] = {LG_OP_ADD, LG_OP_SUB, LG_OP_MUL, LG_OP_FDIV};
    int32_t op = -1;
    for (int k = 0; k < 4; k++)
      if (strcmp(name, binops[k]) == 0) op = binop_ids[k];
    if (op >= 0) {
      got = foldf(fold2(ctx, op, LG_DT_BFLOAT16, cf(ctx, LG_DT_BFLOAT16, bf16((uint32_t)a)), cf(ctx, LG_DT_BFLOAT16, bf16((uint32_t)b))));
      want = bf16((uint32_t)c);
    } else if (strcmp(name, "sqrt") == 0) {
      got = foldf(fold1(ctx, LG_OP_SQRT, LG_DT_BFLOAT16, cf(ctx, LG_DT_BFLOAT16, bf16((uint32_t)a))));
      want = bf16((uint32_t)b);
    } else if (strcmp(name, "cvt") == 0) {
      uint32_t fb = (uint32_t)a;
      float fv;
      memcpy(&fv, &fb, sizeof fv);
      got = foldf(fold1(ctx, LG_OP_CAST, LG_DT_BFLOAT16, cf(ctx, LG_DT_FLOAT32, fv)));
      want = bf16((uint32_t)b);
    } else if (strcmp(name, "rnd") == 0) {
      double d = f64_of_bits(a);
      got = lg_round_float(LG_DT_BFLOAT16, d);
      want = bf16((uint32_t)b);
      CHECK_MSG(same_float(foldf(fold1(ctx, LG_OP_CAST, LG_DT_BFLOAT16, cf(ctx, LG_DT_FLOAT64, d))), want), "CAST %s", line);
    } else if (strcmp(name, "i64") == 0 || strcmp(name, "u64") == 0) {
      bool u = name[0] == 'u';
      int64_t v = u ? (int64_t)strtoull(x, NULL, 10) : strtoll(x, NULL, 10);
      got = foldf(fold1(ctx, LG_OP_CAST, LG_DT_BFLOAT16, ci(ctx, u ? LG_DT_UINT64 : LG_DT_INT64, v)));
      want = bf16((uint32_t)b);
    } else if (strcmp(name, "f16rnd") == 0) {
      int64_t i;
      got = lg_round_float(LG_DT_FLOAT16, f64_of_bits(a));
      native_value(LG_DT_FLOAT16, b, &i, &want);
    } else {
      CHECK_MSG(0, "bad fixture line: %s", line);
      continue;
    }
    CHECK_MSG(same_float(got, want), "%s -> got %a, expected %a", line, got, want);
    lines++;
  }
  fclose(fp);
  CHECK(lines > 300);
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ctx_free(ctx);
}
