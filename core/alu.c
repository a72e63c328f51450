/* alu.c: scalar values with C semantics: integer wrapping, rounding to the float dtypes, and
 * constant folding of ALU ops, CAST and BITCAST. Integer values travel as int64 (the bit
 * pattern for uint64); float values as the double they exactly equal. */
#include <math.h>
#include <string.h>

#include "internal.h"

/* ---- integers ----------------------------------------------------------------------------- */

static int32_t bits_of(lg_dtype dt) { return 8 * lg_dtype_itemsize(lg_dtype_scalar(dt)); }

/* uint64 -> int64 keeping the bit pattern, without implementation-defined conversions */
static int64_t as_int64(uint64_t x) { return x <= INT64_MAX ? (int64_t)x : -(int64_t)(~x) - 1; }

int64_t lg_wrap_int(lg_dtype dt, int64_t v) {
  char k = lg_dtype_kind(dt);
  if (k == 'b') return v != 0;
  int32_t bits = bits_of(dt);
  if ((k != 'i' && k != 'u') || bits == 64) return v;
  uint64_t m = (uint64_t)v & ((UINT64_C(1) << bits) - 1);
  if (k == 'i' && (m >> (bits - 1))) return (int64_t)m - (INT64_C(1) << bits);
  return (int64_t)m;
}

/* ---- small floats: float16 (5-bit exponent, 10-bit fraction), bfloat16 (8, 7) --------------- */

typedef struct {
  int32_t ebits, mbits;
} fmt;
static const fmt F16 = {5, 10}, BF16 = {8, 7};

/* Round sign * m * 2^e (m > 0) to the format, to nearest even; returns its bit pattern. */
static uint16_t pack(int sign, uint64_t m, int32_t e, fmt f) {
  int32_t bias = (1 << (f.ebits - 1)) - 1, emin = 1 - bias;
  uint32_t inf = ((1u << f.ebits) - 1) << f.mbits, s = sign ? 1u << (f.ebits + f.mbits) : 0;
  int32_t top = e + 63 - __builtin_clzll(m); /* exponent of the leading bit */
  if (top > bias) return (uint16_t)(s | inf);
  int32_t lsb = (top >= emin ? top : emin) - f.mbits; /* exponent of the result's last bit */
  int32_t shift = lsb - e;
  uint64_t q;
  if (shift <= 0) {
    q = m << -shift;
  } else if (shift > 64) {
    q = 0;
  } else {
    q = shift == 64 ? 0 : m >> shift;
    uint64_t rem = shift == 64 ? m : m & ((UINT64_C(1) << shift) - 1), half = UINT64_C(1) << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
  }
  /* q carries the implicit bit, so adding it bumps the field (also on a carry out of the
   * fraction, up to inf); subnormals have field 0 */
  uint32_t field = (uint32_t)(lsb + f.mbits + bias - 1) << f.mbits;
  return (uint16_t)(s | (field + (uint32_t)q));
}

static uint16_t pack_double(double v, fmt f) {
  uint64_t b;
  memcpy(&b, &v, sizeof b);
  int sign = (int)(b >> 63);
  int32_t ex = (int32_t)((b >> 52) & 0x7ff);
  uint64_t frac = b & ((UINT64_C(1) << 52) - 1);
  uint32_t s = sign ? 1u << (f.ebits + f.mbits) : 0, inf = ((1u << f.ebits) - 1) << f.mbits;
  if (ex == 0x7ff) return (uint16_t)(s | inf | (frac ? 1u << (f.mbits - 1) : 0));
  if (ex == 0 && frac == 0) return (uint16_t)s;
  if (ex == 0) return pack(sign, frac, -1074, f);
  return pack(sign, frac | (UINT64_C(1) << 52), ex - 1075, f);
}

static double unpack(uint16_t bits, fmt f) {
  int32_t bias = (1 << (f.ebits - 1)) - 1;
  uint32_t ex = (bits >> f.mbits) & ((1u << f.ebits) - 1), frac = bits & ((1u << f.mbits) - 1);
  double sign = (bits >> (f.ebits + f.mbits)) ? -1.0 : 1.0;
  if (ex == (1u << f.ebits) - 1) return frac ? NAN : sign * INFINITY;
  if (ex == 0) return sign * ldexp(frac, 1 - bias - f.mbits);
  return sign * ldexp(frac | (1u << f.mbits), (int)ex - bias - f.mbits);
}

double lg_round_float(lg_dtype dt, double v) {
  switch (lg_dt_scalar_id(dt)) {
  case LG_DT_FLOAT16: return unpack(pack_double(v, F16), F16);
  case LG_DT_BFLOAT16: return unpack(pack_double(v, BF16), BF16);
  case LG_DT_FLOAT32: return (float)v;
  default: return v;
  }
}

/* An integer (the bit pattern of a uint64 when is_unsigned) converted to a float dtype with one
 * rounding: going through double would round twice for float32 and bfloat16. */
double lg_int_to_float(lg_dtype dt, int64_t v, bool is_unsigned) {
  bool neg = !is_unsigned && v < 0;
  uint64_t m = neg ? -(uint64_t)v : (uint64_t)v;
  switch (lg_dt_scalar_id(dt)) {
  case LG_DT_FLOAT16: return m ? unpack(pack(neg, m, 0, F16), F16) : 0.0;
  case LG_DT_BFLOAT16: return m ? unpack(pack(neg, m, 0, BF16), BF16) : 0.0;
  case LG_DT_FLOAT32: return is_unsigned ? (float)(uint64_t)v : (float)v;
  default: return is_unsigned ? (double)(uint64_t)v : (double)v;
  }
}

/* The bits of a scalar value of dtype dt, and back (BITCAST). */
static uint64_t value_bits(lg_dtype dt, const lg_arg *a) {
  switch (lg_dt_scalar_id(dt)) {
  case LG_DT_FLOAT16: return pack_double(a->f, F16);
  case LG_DT_BFLOAT16: return pack_double(a->f, BF16);
  case LG_DT_FLOAT32: {
    float f = (float)a->f;
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
  }
  case LG_DT_FLOAT64: {
    uint64_t b;
    memcpy(&b, &a->f, sizeof b);
    return b;
  }
  default: {
    int32_t bits = bits_of(dt);
    return bits == 64 ? (uint64_t)a->i : (uint64_t)a->i & ((UINT64_C(1) << bits) - 1);
  }
  }
}

static double bits_value(lg_dtype dt, uint64_t b) {
  switch (lg_dt_scalar_id(dt)) {
  case LG_DT_FLOAT16: return unpack((uint16_t)b, F16);
  case LG_DT_BFLOAT16: return unpack((uint16_t)b, BF16);
  case LG_DT_FLOAT32: {
    uint32_t b32 = (uint32_t)b;
    float f;
    memcpy(&f, &b32, sizeof f);
    return f;
  }
  default: {
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
  }
  }
}

/* ---- folding ------------------------------------------------------------------------------ */

enum { NOFOLD = 0, INT_RESULT = 1, FLOAT_RESULT = 2 };

static int64_t shr_signed(int64_t a, int64_t n) { return a < 0 ? ~(~a >> n) : a >> n; }

/* Integer and bool ops on canonical values of dtype dt (the operands' dtype). */
static int fold_int(int32_t op, lg_dtype dt, lg_dtype shift_dt, const int64_t *v, int64_t *r) {
  bool uns = lg_dt_is_unsigned(dt);
  uint64_t ua = (uint64_t)v[0], ub = (uint64_t)v[1];
  int64_t a = v[0], b = v[1];
  switch (op) {
  case LG_OP_ADD: *r = as_int64(ua + ub); break;
  case LG_OP_SUB: *r = as_int64(ua - ub); break;
  case LG_OP_MUL: *r = as_int64(ua * ub); break;
  case LG_OP_NEG: *r = as_int64(-ua); break;
  case LG_OP_MULACC: *r = as_int64(ua * ub + (uint64_t)v[2]); break;
  case LG_OP_IDIV:
  case LG_OP_MOD:
    if (b == 0) return NOFOLD;
    if (uns) *r = as_int64(op == LG_OP_IDIV ? ua / ub : ua % ub);
    else if (b == -1) *r = op == LG_OP_IDIV ? as_int64(-ua) : 0; /* INT_MIN / -1 wraps */
    else *r = op == LG_OP_IDIV ? a / b : a % b;
    break;
  case LG_OP_MAX: *r = (uns ? ua > ub : a > b) ? a : b; break;
  case LG_OP_CMPLT: *r = uns ? ua < ub : a < b; return INT_RESULT;
  case LG_OP_CMPNE: *r = a != b; return INT_RESULT;
  case LG_OP_CMPEQ: *r = a == b; return INT_RESULT;
  case LG_OP_AND: *r = a & b; break;
  case LG_OP_OR: *r = a | b; break;
  case LG_OP_XOR: *r = a ^ b; break;
  case LG_OP_SHL:
  case LG_OP_SHR:
    /* the amount is read with its own dtype's signedness; out-of-range amounts are UB in C */
    if ((!lg_dt_is_unsigned(shift_dt) && b < 0) || ub >= (uint64_t)bits_of(dt)) return NOFOLD;
    if (op == LG_OP_SHL) *r = as_int64(ua << b);
    else *r = uns ? as_int64(ua >> b) : shr_signed(a, b);
    break;
  default: return NOFOLD;
  }
  *r = lg_wrap_int(dt, *r);
  return INT_RESULT;
}

/* Float ops in double, rounded to the dtype per op (as PyTorch and C do for each operation). */
static int fold_float(int32_t op, lg_dtype dt, const double *v, double *r, int64_t *cmp) {
  double a = v[0], b = v[1];
  switch (op) {
  case LG_OP_ADD: *r = a + b; break;
  case LG_OP_SUB: *r = a - b; break;
  case LG_OP_MUL: *r = a * b; break;
  case LG_OP_FDIV: *r = a / b; break;
  case LG_OP_NEG: *r = -a; break;
  case LG_OP_RECIPROCAL: *r = 1.0 / a; break;
  case LG_OP_SQRT: *r = sqrt(a); break;
  case LG_OP_TRUNC: *r = trunc(a); break;
  case LG_OP_EXP2: *r = exp2(a); break;
  case LG_OP_LOG2: *r = log2(a); break;
  case LG_OP_SIN: *r = sin(a); break;
  case LG_OP_POW: *r = pow(a, b); break;
  /* MULACC is the unfused a*b + c: each operation rounds, like the C it renders to */
  case LG_OP_MULACC: *r = lg_round_float(dt, a * b) + v[2]; break;
  /* MAX propagates NaN (torch.maximum) and orders -0.0 below 0.0 */
  case LG_OP_MAX: *r = isnan(a) || isnan(b) ? NAN : a > b || (a == b && !signbit(a)) ? a : b; break;
  case LG_OP_CMPLT: *cmp = a < b; return INT_RESULT;
  case LG_OP_CMPNE: *cmp = a != b; return INT_RESULT;
  case LG_OP_CMPEQ: *cmp = a == b; return INT_RESULT;
  default: return NOFOLD;
  }
  *r = lg_round_float(dt, *r);
  return FLOAT_RESULT;
}

static int fold_cast(lg_dtype to, lg_dtype from, const lg_arg *a, int64_t *ri, double *rf) {
  char kt = lg_dtype_kind(to), kf = lg_dtype_kind(from);
  if (kt == 'b') {
    *ri = kf == 'f' ? a->f != 0 : a->i != 0;
    return INT_RESULT;
  }
  if (kt == 'f') {
    *rf = kf == 'f' ? lg_round_float(to, a->f) : lg_int_to_float(to, a->i, kf == 'u');
    return FLOAT_RESULT;
  }
  if (kf != 'f') {
    *ri = lg_wrap_int(to, a->i);
    return INT_RESULT;
  }
  /* float -> int truncates; values outside the target's range are UB in C: not folded */
  double t = trunc(a->f);
  int32_t bits = bits_of(to);
  double lo = kt == 'u' ? 0.0 : -ldexp(1.0, bits - 1), end = ldexp(1.0, kt == 'u' ? bits : bits - 1);
  if (!(t >= lo && t < end)) return NOFOLD;
  *ri = t >= 9223372036854775808.0 ? as_int64((uint64_t)t) : (int64_t)t;
  return INT_RESULT;
}

static bool is_scalar_value(lg_dtype dt) { return lg_dt_is_plain(dt) && lg_dtype_kind(dt) != 'v'; }

lg_status lg_uop_fold(lg_ctx *ctx, const lg_uop *u, lg_uop **out) {
  *out = NULL;
  int32_t op = u->op;
  if (!(lg_op_has(op, LG_OPF_ALU) || op == LG_OP_CAST || op == LG_OP_BITCAST) || !is_scalar_value(u->dtype))
    return LG_OK;
  for (int32_t i = 0; i < u->nsrc; i++)
    if (u->src[i]->op != LG_OP_CONST || !is_scalar_value(u->src[i]->dtype)) return LG_OK;

  lg_dtype dt = u->dtype, from = u->src[0]->dtype;
  int64_t ri = 0;
  double rf = 0;
  int res = NOFOLD;
  if (op == LG_OP_CAST) {
    res = fold_cast(dt, from, &u->src[0]->arg, &ri, &rf);
  } else if (op == LG_OP_BITCAST) {
    if (lg_dtype_itemsize(dt) != lg_dtype_itemsize(from) || lg_dtype_kind(dt) == 'b') return LG_OK;
    uint64_t b = value_bits(from, &u->src[0]->arg);
    if (lg_dt_is_float(dt)) rf = bits_value(dt, b), res = FLOAT_RESULT;
    else ri = lg_wrap_int(dt, as_int64(b)), res = INT_RESULT;
  } else {
    /* the operands' dtype: the node's, but a comparison's result is bool, WHERE's src0 too */
    bool cmp = lg_op_has(op, LG_OPF_CMP), shift = op == LG_OP_SHL || op == LG_OP_SHR;
    int32_t first = op == LG_OP_WHERE ? 1 : 0;
    lg_dtype odt = cmp ? from : dt;
    if (cmp && lg_dtype_kind(dt) != 'b') return LG_OK;
    if (op == LG_OP_WHERE && lg_dtype_kind(from) != 'b') return LG_OK;
    for (int32_t i = first; i < u->nsrc; i++)
      if (u->src[i]->dtype != odt && !(shift && i == 1 && lg_dt_is_int(u->src[1]->dtype))) return LG_OK;
    char k = lg_dtype_kind(odt);
    uint32_t need = k == 'f' ? LG_OPF_FLOATOK : k == 'b' ? LG_OPF_BOOLOK : LG_OPF_INTOK;
    if (!lg_op_has(op, need)) return LG_OK;
    if (op == LG_OP_WHERE) {
      const lg_arg *pick = &u->src[u->src[0]->arg.i ? 1 : 2]->arg;
      ri = pick->i, rf = pick->f;
      res = k == 'f' ? FLOAT_RESULT : INT_RESULT;
    } else if (k == 'f') {
      double v[3] = {0};
      for (int32_t i = 0; i < u->nsrc; i++) v[i] = u->src[i]->arg.f;
      res = fold_float(op, odt, v, &rf, &ri);
    } else {
      int64_t v[3] = {0};
      for (int32_t i = 0; i < u->nsrc; i++) v[i] = u->src[i]->arg.i;
      res = fold_int(op, odt, shift ? u->src[1]->dtype : odt, v, &ri);
    }
  }
  if (res == INT_RESULT) return lg_uop_const_int(ctx, dt, ri, out);
  if (res == FLOAT_RESULT) return lg_uop_const_float(ctx, dt, rf, out);
  return LG_OK;
}

/* ---- values in memory --------------------------------------------------------------------- */

void lg_value_to_bytes(lg_dtype dt, const lg_arg *v, void *dst) {
  lg_arg a = *v;
  if (lg_dt_is_float(dt)) {
    a.f = a.kind == LG_ARG_INT ? lg_int_to_float(dt, a.i, false) : lg_round_float(dt, a.f);
  } else {
    if (a.kind == LG_ARG_FLOAT) /* truncate; NaN is 0 and out-of-range values saturate */
      a.i = a.f != a.f ? 0 : a.f >= 0x1p63 ? INT64_MAX : a.f <= -0x1p63 ? INT64_MIN : (int64_t)a.f;
    a.i = lg_dtype_kind(dt) == 'b' ? a.i != 0 : lg_wrap_int(dt, a.i);
  }
  uint64_t bits = value_bits(dt, &a);
  memcpy(dst, &bits, (size_t)lg_dtype_itemsize(lg_dtype_scalar(dt))); /* little-endian hosts */
}

void lg_value_from_bytes(lg_dtype dt, const void *src, lg_arg *out) {
  uint64_t bits = 0;
  memcpy(&bits, src, (size_t)lg_dtype_itemsize(lg_dtype_scalar(dt)));
  if (lg_dt_is_float(dt)) {
    *out = (lg_arg){.kind = LG_ARG_FLOAT, .f = bits_value(dt, bits)};
  } else {
    int32_t bits_n = bits_of(dt);
    int64_t v = lg_dtype_kind(dt) == 'i' && bits_n < 64 && (bits >> (bits_n - 1)) & 1 ? (int64_t)(bits | ~((UINT64_C(1) << bits_n) - 1))
                                                                                       : (int64_t)bits;
    *out = (lg_arg){.kind = LG_ARG_INT, .i = v};
  }
}
