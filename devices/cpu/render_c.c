/* render_c.c: a kernel graph as C source for the CPU device (what DEBUG=4 shows); lg_render_c
 * in luagrad.h. Vector lanes (opt.vectorize) are devices/cpu/render_c_vec.c's; render_c.h holds
 * what the two files share.
 *
 * Cores: the first output loop (RANGE kind 0) opened at the top level is split over the cores,
 * core_id running the iterations [n * core_id / ncores, n * (core_id + 1) / ncores), unless a
 * STORE lies outside it or an accumulator spans it (then, as with no such loop, core 0 does
 * everything and the other cores return at once). Top-level values outside the loop are
 * computed by every core. The source exports `const int64_t <name>_split[2]`: the loop's
 * iterations (its end's upper bound when it is not a constant; 0 when nothing is split) and the
 * work of one iteration: the ALU ops, casts, loads, stores and accumulator updates in its body,
 * each counted as often as the loops inside it run. devices/cpu/cpu.c picks the cores from it.
 *
 * The linearizer (core/linearize.c) orders the nodes; this file writes each as C:
 *   - parameters: `float *restrict data0 = (float *)bufs[0];` per DEFINE_GLOBAL (const when the
 *     kernel only loads from it), `const int32_t var_n = (int32_t)ints[0];` per DEFINE_VAR;
 *   - loops `for (int32_t ridx0 = 0; ridx0 < 16; ridx0++) {`, loads `float val0 = data1[i];`,
 *     accumulators `float acc0 = 0.0f;` then `acc0 = acc0 + x;` (a float sum of products
 *     `acc0 = fmaf(a, b, acc0);`, lg_lin_fma_terms in linearize.h), stores `data0[i] = x;`;
 *   - math used once is inlined into its user (up to INLINE_MAX characters), other math gets an
 *     `alu` variable; constants are inline; parentheses follow C's precedence.
 * Values follow core/alu.c's folding, without undefined behaviour in C:
 *   - integer ADD, SUB, MUL, NEG, MULACC and SHL that could wrap (their bounds, core/vrange.c,
 *     are the dtype's whole range) are done in an unsigned type and converted back;
 *   - IDIV and MOD by 0 give 0 and INT_MIN / -1 wraps; shifts by amounts outside [0, bits) give
 *     0 (-1 for SHR of a negative value); a float -> int CAST saturates and NaN gives 0. C leaves
 *     these undefined and core/alu.c does not fold them; small helpers handle them unless the
 *     operands' bounds rule them out;
 *   - MAX of floats is NaN when a side is NaN and orders -0.0 below 0.0;
 *   - float16 is _Float16; bfloat16 values live in float variables and memory holds their bits.
 *     Each float16 or bfloat16 operation rounds its result to the dtype, as the folding does
 *     (float is wide enough for one correct rounding); the bfloat16 helpers are emitted only
 *     when a kernel uses bfloat16;
 *   - BITCAST copies bits (__builtin_memcpy); to bool it is `!= 0`, as a _Bool must be 0 or 1. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render_c.h"

/* ---- text --------------------------------------------------------------------------------------- */

lg_status lg_rc_fail(rnd *r, const lg_uop *u, const char *fmt, ...) {
  char msg[512], d[96];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return lg_ctx_fail(r->ctx, LG_ERR_SPEC, "render C: %s: %s", lg_lin_describe(u, d, sizeof d), msg);
}

/* Text from a template: each `$` takes two arguments, an `const expr *` and the precedence it
 * must bind at least as tightly as (int), else it is parenthesized; so is an operand starting
 * with '-' right after a '-'. */
expr lg_rc_build(rnd *r, int32_t prec, const char *tmpl, ...) {
  lg_strbuf b = {0};
  va_list ap;
  va_start(ap, tmpl);
  for (const char *p = tmpl; *p;) {
    const char *q = strchr(p, '$');
    if (!q) q = p + strlen(p);
    lg_strbuf_put(&b, "%.*s", (int)(q - p), p);
    if (!*q) break;
    const expr *e = va_arg(ap, const expr *);
    int minp = va_arg(ap, int);
    const char *s = e->s ? e->s : "";
    bool paren = e->prec < minp || (q > tmpl && q[-1] == '-' && s[0] == '-');
    lg_strbuf_put(&b, paren ? "(%s)" : "%s", s);
    p = q + 1;
  }
  va_end(ap);
  if (b.oom || !b.p) {
    free(b.p);
    r->oom = true;
    return (expr){NULL, prec};
  }
  return (expr){b.p, prec};
}

/* a line of the function's body, indented by its loop depth */
void lg_rc_line(rnd *r, int32_t depth, const char *fmt, ...) {
  char *s = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0) {
    r->oom = true;
    return;
  }
  lg_strbuf_put(&r->body, "%*s%s\n", 2 * (depth + 1), "", s);
  free(s);
}

/* ---- dtypes and literals ------------------------------------------------------------------------ */

int32_t lg_rc_sid(lg_dtype dt) { return lg_dt_scalar_id(dt); }
static int32_t bits(lg_dtype dt) { return 8 * lg_dtype_itemsize(dt); }
bool lg_rc_narrow(lg_dtype dt) { return lg_dtype_itemsize(dt) < 4; }
bool lg_rc_is_bf16(lg_dtype dt) { return lg_rc_sid(dt) == LG_DT_BFLOAT16; }

/* the C type of a value */
const char *lg_rc_ctype(lg_dtype dt) {
  static const char *const names[LG_DT__COUNT] = {
      [LG_DT_BOOL] = "_Bool",       [LG_DT_INT8] = "int8_t",     [LG_DT_INT16] = "int16_t",
      [LG_DT_INT32] = "int32_t",    [LG_DT_INT64] = "int64_t",   [LG_DT_UINT8] = "uint8_t",
      [LG_DT_UINT16] = "uint16_t",  [LG_DT_UINT32] = "uint32_t", [LG_DT_UINT64] = "uint64_t",
      [LG_DT_FLOAT16] = "_Float16", [LG_DT_BFLOAT16] = "float",  [LG_DT_FLOAT32] = "float",
      [LG_DT_FLOAT64] = "double"};
  return names[lg_rc_sid(dt)] ? names[lg_rc_sid(dt)] : "void";
}

/* the C type of an element in memory */
static const char *stype(lg_dtype dt) { return lg_rc_is_bf16(dt) ? "uint16_t" : lg_rc_ctype(dt); }

/* the wide unsigned type integer arithmetic wraps in */
static const char *utype(lg_dtype dt) { return bits(dt) == 64 ? "uint64_t" : "uint32_t"; }

/* short dtype names for helpers */
const char *lg_rc_sfx(lg_dtype dt) {
  static const char *const names[LG_DT__COUNT] = {
      [LG_DT_BOOL] = "bool",  [LG_DT_INT8] = "i8",     [LG_DT_INT16] = "i16",     [LG_DT_INT32] = "i32",
      [LG_DT_INT64] = "i64",  [LG_DT_UINT8] = "u8",    [LG_DT_UINT16] = "u16",    [LG_DT_UINT32] = "u32",
      [LG_DT_UINT64] = "u64", [LG_DT_FLOAT16] = "f16", [LG_DT_BFLOAT16] = "bf16", [LG_DT_FLOAT32] = "f32",
      [LG_DT_FLOAT64] = "f64"};
  return names[lg_rc_sid(dt)] ? names[lg_rc_sid(dt)] : "void";
}

static int32_t lit_prec(const char *s) { return s[0] == '-' || s[0] == '(' ? P_UNARY : P_PRIMARY; }

/* an integer or bool constant: 3, -3, (int8_t)-3, 4294967295u, -5ll, INT32_MIN */
static int32_t lit_int(lg_dtype dt, int64_t v, char *out, size_t size) {
  unsigned long long u = (unsigned long long)(uint64_t)v;
  switch (lg_rc_sid(dt)) {
  case LG_DT_BOOL: snprintf(out, size, "%d", v != 0); break;
  case LG_DT_INT8:
  case LG_DT_INT16: snprintf(out, size, "(%s)%lld", lg_rc_ctype(dt), (long long)v); break;
  case LG_DT_UINT8:
  case LG_DT_UINT16: snprintf(out, size, "(%s)%llu", lg_rc_ctype(dt), u); break;
  case LG_DT_INT32: snprintf(out, size, v == INT32_MIN ? "INT32_MIN" : "%lld", (long long)v); break;
  case LG_DT_INT64: snprintf(out, size, v == INT64_MIN ? "INT64_MIN" : "%lldll", (long long)v); break;
  case LG_DT_UINT32: snprintf(out, size, "%lluu", u); break;
  default: snprintf(out, size, "%lluull", u); break;
  }
  return lit_prec(out);
}

/* the shortest text of the printf format fmt ("%.*g" or "%.*f") that reads back as v (17 digits
 * always do, and so do 17 decimals between 1 and 1e6) */
static void shortest(char *s, size_t size, const char *fmt, double v, bool single) {
  for (int prec = 0; prec <= 17; prec++) {
    snprintf(s, size, fmt, prec, v);
    if (single ? strtof(s, NULL) == (float)v : strtod(s, NULL) == v) return;
  }
}

/* a float constant: the shortest text that reads back as the value (1.0f, 0.1f, 2.0, -0.0f),
 * INFINITY, NAN; float16 as (_Float16)1.5f. Float16 and bfloat16 values are exact in float. */
static int32_t lit_float(lg_dtype dt, double v, char *out, size_t size) {
  bool single = lg_rc_sid(dt) != LG_DT_FLOAT64;
  const char *cast = lg_rc_sid(dt) == LG_DT_FLOAT16 ? "(_Float16)" : "";
  char s[40];
  if (isnan(v) || isinf(v)) {
    snprintf(out, size, "%s%s", cast, isnan(v) ? "NAN" : v < 0 ? "-INFINITY" : "INFINITY");
    return lit_prec(out);
  }
  shortest(s, sizeof s, "%.*g", v, single);
  if (strchr(s, 'e') && fabs(v) >= 1 && fabs(v) < 1e6) shortest(s, sizeof s, "%.*f", v, single); /* 10.0f, not 1e+01f */
  snprintf(out, size, "%s%s%s%s", cast, s, strpbrk(s, ".e") ? "" : ".0", single ? "f" : "");
  return lit_prec(out);
}

expr lg_rc_literal(rnd *r, lg_dtype dt, int64_t i, double f) {
  char s[64];
  int32_t prec = lg_dt_is_float(dt) ? lit_float(dt, f, s, sizeof s) : lit_int(dt, i, s, sizeof s);
  return lg_rc_build(r, prec, s);
}

/* ---- helpers emitted into the kernel ------------------------------------------------------------ */

static void helper_name(int32_t kind, lg_dtype a, lg_dtype b, char *out, size_t size) {
  static const char *const prefix[] = {[H_MAX] = "max", [H_IDIV] = "idiv", [H_MOD] = "mod",        [H_SHL] = "shl",
                                       [H_SHR] = "shr", [H_FTOI] = "ftoi", [H_BITCAST] = "bitcast", [H_VTYPE] = "vec",
                                       [H_VALL] = "all", [H_VWHERE] = "where", [H_VMAX] = "vmax",
                                       [H_VLOAD] = "vload", [H_VSTORE] = "vstore", [H_VINTRIN] = "intrin", [H_VGATHER] = "gather",
                                       [H_VFMA] = "fma", [H_VLANES] = "lanes", [H_VLOAD2] = "load2",
                                       [H_VLOADH] = "loadh"};
  if (kind == H_BITCAST)
    snprintf(out, size, "bitcast_%s_%s", lg_rc_sfx(a), lg_rc_sfx(b));
  else
    snprintf(out, size, "%s_%s", prefix[kind], lg_rc_sfx(a));
}


static void bf16_helpers(rnd *r, int32_t kind) {
  lg_strbuf *h = &r->pre;
  if (kind == H_BF16) {
    lg_strbuf_put(h, "/* bfloat16: values in float variables, rounded after each operation; memory holds the bits */\n"
           "static inline float bf16_to_float(uint16_t b) {\n"
           "  uint32_t u = (uint32_t)b << 16;\n"
           "  float f;\n"
           "  __builtin_memcpy(&f, &u, 4);\n"
           "  return f;\n"
           "}\n"
           "static inline uint16_t float_to_bf16(float f) { /* to nearest even */\n"
           "  uint32_t u;\n"
           "  __builtin_memcpy(&u, &f, 4);\n"
           "  return f != f ? (uint16_t)(u >> 16 | 0x40) : (uint16_t)((u + 0x7fff + (u >> 16 & 1)) >> 16);\n"
           "}\n"
           "static inline float bf16_round(float f) { return bf16_to_float(float_to_bf16(f)); }\n");
  } else if (kind == H_BF16_DOUBLE) {
    lg_rc_need(r, H_BF16, 0, 0);
    lg_strbuf_put(h, "/* a double to bfloat16 in one rounding: to float rounding to odd keeps the second one exact */\n"
           "static inline float bf16_round_double(double d) {\n"
           "  float f = (float)d;\n"
           "  uint32_t u;\n"
           "  __builtin_memcpy(&u, &f, 4);\n"
           "  if ((double)f != d && d == d && !(u & 1)) f = nextafterf(f, (double)f < d ? INFINITY : -INFINITY);\n"
           "  return bf16_round(f);\n"
           "}\n");
  } else {
    lg_rc_need(r, H_BF16_DOUBLE, 0, 0);
    lg_strbuf_put(h, "/* a 64-bit integer to double rounding to odd, so that bf16_round_double rounds it once */\n"
           "static inline double odd_double_u64(uint64_t m) {\n"
           "  int s = m >> 53 ? 11 - __builtin_clzll(m) : 0;\n"
           "  return (double)(m >> s | ((m & ((1ull << s) - 1)) != 0)) * (double)(1ull << s);\n"
           "}\n"
           "static inline double odd_double_i64(int64_t x) {\n"
           "  return x < 0 ? -odd_double_u64(0 - (uint64_t)x) : odd_double_u64((uint64_t)x);\n"
           "}\n");
  }
}

static void int_helper(rnd *r, int32_t kind, lg_dtype a, const char *name) {
  lg_strbuf *h = &r->pre;
  const char *t = lg_rc_ctype(a), *u = utype(a);
  bool sgn = lg_dtype_kind(a) == 'i';
  int32_t n = bits(a);
  switch (kind) {
  case H_MAX: lg_strbuf_put(h, "static inline %s %s(%s a, %s b) { return a > b ? a : b; }\n", t, name, t, t); break;
  case H_IDIV:
    if (sgn)
      lg_strbuf_put(h,
          "static inline %s %s(%s a, %s b) { return b == 0 ? 0 : b == -1 ? (%s)((%s)0 - (%s)a) : (%s)(a / b); }"
          " /* x / 0 is 0 */\n",
          t, name, t, t, t, u, u, t);
    else
      lg_strbuf_put(h, "static inline %s %s(%s a, %s b) { return b == 0 ? 0 : (%s)(a / b); } /* x / 0 is 0 */\n", t, name, t, t,
          t);
    break;
  case H_MOD:
    lg_strbuf_put(h, "static inline %s %s(%s a, %s b) { return b == 0%s ? 0 : (%s)(a %% b); } /* x %% 0 is 0 */\n", t, name, t, t,
        sgn ? " || b == -1" : "", t);
    break;
  case H_SHL:
    lg_strbuf_put(h, "static inline %s %s(%s a, int64_t b) { return b >= 0 && b < %d ? (%s)((%s)a << b) : 0; }\n", t, name, t, n,
        t, u);
    break;
  case H_SHR:
    lg_strbuf_put(h, "static inline %s %s(%s a, int64_t b) { return b >= 0 && b < %d ? (%s)(a >> b) : %s; }\n", t, name, t, n, t,
        sgn ? "a < 0 ? -1 : 0" : "0");
    break;
  default: { /* H_FTOI */
    char lo[48], hi[48];
    int64_t mn, mx;
    if (!lg_dt_int_range(a, &mn, &mx)) mn = 0, mx = -1; /* uint64: the bits of UINT64_MAX */
    lit_int(a, mn, lo, sizeof lo);
    lit_int(a, mx, hi, sizeof hi);
    lg_strbuf_put(h,
        "static inline %s %s(double x) { return x != x ? 0 : x < %.1f ? %s : x >= %.1f ? %s : (%s)x; }"
        " /* saturating; NaN is 0 */\n",
        t, name, sgn ? -ldexp(1, n - 1) : 0.0, lo, ldexp(1, sgn ? n - 1 : n), hi, t);
  }
  }
}

/* Emit helper (kind, a, b) and what it needs, once. */
void lg_rc_need(rnd *r, int32_t kind, lg_dtype a, lg_dtype b) {
  uint32_t key = (uint32_t)kind | (uint32_t)lg_rc_sid(a) << 8 | (uint32_t)lg_rc_sid(b) << 16;
  for (int32_t i = 0; i < r->nhelpers; i++)
    if (r->helpers[i] == key) return;
  if (r->nhelpers == r->caphelpers) {
    int32_t cap = r->caphelpers ? 2 * r->caphelpers : 16;
    uint32_t *h = realloc(r->helpers, (size_t)cap * sizeof *h);
    if (!h) {
      r->oom = true;
      return;
    }
    r->helpers = h, r->caphelpers = cap;
  }
  r->helpers[r->nhelpers++] = key;
  char name[40];
  helper_name(kind, a, b, name, sizeof name);
  if (kind <= H_ODD) {
    bf16_helpers(r, kind);
  } else if (kind >= H_VTYPE) {
    lg_rc_vec_helper(r, kind, a, b);
  } else if (kind == H_MAX && lg_dt_is_float(a)) {
    const char *t = lg_rc_ctype(a);
    lg_strbuf_put(&r->pre,
        "static inline %s %s(%s a, %s b) { return a != a || b != b ? NAN : a > b || (a == b && !signbit(a)) ? a : b; }"
        " /* NaN wins; -0.0 < 0.0 */\n",
        t, name, t, t);
  } else if (kind == H_BITCAST) { /* to a from b */
    if (lg_rc_is_bf16(a) || lg_rc_is_bf16(b)) lg_rc_need(r, H_BF16, 0, 0);
    lg_strbuf_put(&r->pre, "static inline %s %s(%s x) { %s s = %s; %s t; __builtin_memcpy(&t, &s, sizeof t); return %s; }\n",
        lg_rc_ctype(a), name, lg_rc_ctype(b), stype(b), lg_rc_is_bf16(b) ? "float_to_bf16(x)" : "x", stype(a),
        lg_rc_is_bf16(a) ? "bf16_to_float(t)" : "t");
  } else {
    int_helper(r, kind, a, name);
  }
}

/* a call of helper (kind, a, b) on one or two operands */
static expr call(rnd *r, int32_t kind, lg_dtype a, lg_dtype b, const expr *x, const expr *y) {
  char t[64];
  lg_rc_need(r, kind, a, b);
  helper_name(kind, a, b, t, sizeof t - 8);
  strcat(t, y ? "($, $)" : "($)");
  return y ? lg_rc_build(r, P_PRIMARY, t, x, P_ANY, y, P_ANY) : lg_rc_build(r, P_PRIMARY, t, x, P_ANY);
}

/* ---- operations ---------------------------------------------------------------------------------- */

/* a float16 or bfloat16 result rounded to its dtype; float32 and float64 need nothing */
static expr round_to(rnd *r, lg_dtype dt, expr e) {
  if (lg_rc_sid(dt) != LG_DT_FLOAT16 && !lg_rc_is_bf16(dt)) return e;
  expr out;
  if (lg_rc_is_bf16(dt))
    lg_rc_need(r, H_BF16, 0, 0), out = lg_rc_build(r, P_PRIMARY, "bf16_round($)", &e, P_ANY);
  else
    out = lg_rc_build(r, P_UNARY, "(_Float16)$", &e, P_UNARY);
  free(e.s);
  return out;
}

static expr float_op(rnd *r, int32_t op, lg_dtype dt, const expr *a, const expr *b, const expr *c) {
  static const char *const fn[LG_OP__COUNT] = {[LG_OP_SQRT] = "sqrt", [LG_OP_EXP2] = "exp2",   [LG_OP_LOG2] = "log2",
                                               [LG_OP_SIN] = "sin",   [LG_OP_TRUNC] = "trunc", [LG_OP_POW] = "pow"};
  const char *f = lg_rc_sid(dt) == LG_DT_FLOAT64 ? "" : "f";
  char t[64];
  switch (op) {
  case LG_OP_ADD: return round_to(r, dt, lg_rc_build(r, P_ADD, "$ + $", a, P_ADD, b, P_ADD + 1));
  case LG_OP_SUB: return round_to(r, dt, lg_rc_build(r, P_ADD, "$ - $", a, P_ADD, b, P_ADD + 1));
  case LG_OP_MUL: return round_to(r, dt, lg_rc_build(r, P_MUL, "$ * $", a, P_MUL, b, P_MUL + 1));
  case LG_OP_FDIV: return round_to(r, dt, lg_rc_build(r, P_MUL, "$ / $", a, P_MUL, b, P_MUL + 1));
  case LG_OP_NEG: return lg_rc_build(r, P_UNARY, "-$", a, P_UNARY);
  case LG_OP_RECIPROCAL:
    snprintf(t, sizeof t, "1.0%s / $", f);
    return round_to(r, dt, lg_rc_build(r, P_MUL, t, a, P_MUL + 1));
  case LG_OP_MAX: return call(r, H_MAX, lg_rc_sid(dt) == LG_DT_FLOAT64 ? LG_DT_FLOAT64 : LG_DT_FLOAT32, 0, a, b);
  case LG_OP_MULACC: {
    expr m = round_to(r, dt, lg_rc_build(r, P_MUL, "$ * $", a, P_MUL, b, P_MUL + 1));
    expr s = round_to(r, dt, lg_rc_build(r, P_ADD, "$ + $", &m, P_ADD, c, P_ADD + 1));
    free(m.s);
    return s;
  }
  case LG_OP_POW:
    snprintf(t, sizeof t, "pow%s($, $)", f);
    return round_to(r, dt, lg_rc_build(r, P_PRIMARY, t, a, P_ANY, b, P_ANY));
  default: /* the unary functions; TRUNC is exact in every dtype */
    snprintf(t, sizeof t, "%s%s($)", fn[op], f);
    expr e = lg_rc_build(r, P_PRIMARY, t, a, P_ANY);
    return op == LG_OP_TRUNC ? e : round_to(r, dt, e);
  }
}

static expr int_op(rnd *r, int32_t op, lg_dtype dt, const expr *a, const expr *b, const expr *c, lg_lin_facts f) {
  const char *t = lg_rc_ctype(dt), *u = utype(dt);
  bool nar = lg_rc_narrow(dt), plain = f.nowrap || (lg_dtype_kind(dt) == 'u' && !nar); /* C gets it right as written */
  const char *widen = lg_rc_sid(dt) == LG_DT_UINT16 ? "(uint32_t)" : "";               /* 65535 * 65535 overflows int */
  char tm[160];
  switch (op) {
  case LG_OP_ADD:
  case LG_OP_SUB:
  case LG_OP_MUL: {
    const char *sym = op == LG_OP_ADD ? "+" : op == LG_OP_SUB ? "-" : "*";
    int32_t p = op == LG_OP_MUL ? P_MUL : P_ADD;
    if (plain) {
      snprintf(tm, sizeof tm, "$ %s $", sym);
      return lg_rc_build(r, p, tm, a, p, b, p + 1);
    }
    if (nar) {
      snprintf(tm, sizeof tm, "(%s)(%s$ %s $)", t, op == LG_OP_MUL ? widen : "", sym);
      return lg_rc_build(r, P_UNARY, tm, a, op == LG_OP_MUL && *widen ? P_UNARY : p, b, p + 1);
    }
    snprintf(tm, sizeof tm, "(%s)((%s)$ %s (%s)$)", t, u, sym, u);
    return lg_rc_build(r, P_UNARY, tm, a, P_UNARY, b, P_UNARY);
  }
  case LG_OP_NEG:
    if (plain) return lg_rc_build(r, P_UNARY, "-$", a, P_UNARY);
    if (nar)
      snprintf(tm, sizeof tm, "(%s)-$", t);
    else
      snprintf(tm, sizeof tm, "(%s)-(%s)$", t, u);
    return lg_rc_build(r, P_UNARY, tm, a, P_UNARY);
  case LG_OP_MULACC:
    if (plain) return lg_rc_build(r, P_ADD, "$ * $ + $", a, P_MUL, b, P_MUL + 1, c, P_ADD + 1);
    if (nar) {
      snprintf(tm, sizeof tm, "(%s)(%s$ * $ + $)", t, widen);
      return lg_rc_build(r, P_UNARY, tm, a, *widen ? P_UNARY : P_MUL, b, P_MUL + 1, c, P_ADD + 1);
    }
    snprintf(tm, sizeof tm, "(%s)((%s)$ * (%s)$ + (%s)$)", t, u, u, u);
    return lg_rc_build(r, P_UNARY, tm, a, P_UNARY, b, P_UNARY, c, P_UNARY);
  case LG_OP_IDIV:
  case LG_OP_MOD:
    if (!f.div_plain) return call(r, op == LG_OP_IDIV ? H_IDIV : H_MOD, dt, 0, a, b);
    if (op == LG_OP_MOD) return lg_rc_build(r, P_MUL, "$ % $", a, P_MUL, b, P_MUL + 1);
    if (!nar || f.nowrap) return lg_rc_build(r, P_MUL, "$ / $", a, P_MUL, b, P_MUL + 1);
    snprintf(tm, sizeof tm, "(%s)($ / $)", t); /* INT8_MIN / -1 */
    return lg_rc_build(r, P_UNARY, tm, a, P_MUL, b, P_MUL + 1);
  case LG_OP_MAX: return call(r, H_MAX, dt, 0, a, b);
  case LG_OP_AND: return lg_rc_build(r, P_BAND, "$ & $", a, P_UNARY, b, P_UNARY);
  case LG_OP_OR: return lg_rc_build(r, P_BOR, "$ | $", a, P_UNARY, b, P_UNARY);
  case LG_OP_XOR: return lg_rc_build(r, P_BXOR, "$ ^ $", a, P_UNARY, b, P_UNARY);
  case LG_OP_SHL:
    if (!f.shift_plain) return call(r, H_SHL, dt, 0, a, b);
    if (f.nowrap && f.nonneg) return lg_rc_build(r, P_SHIFT, "$ << $", a, P_UNARY, b, P_UNARY);
    snprintf(tm, sizeof tm, "(%s)((%s)$ << $)", t, u);
    return lg_rc_build(r, P_UNARY, tm, a, P_UNARY, b, P_UNARY);
  default: /* SHR: C's >> of a negative value is arithmetic in gcc and clang, as core/alu.c folds */
    if (!f.shift_plain) return call(r, H_SHR, dt, 0, a, b);
    return lg_rc_build(r, P_SHIFT, "$ >> $", a, P_UNARY, b, P_UNARY);
  }
}

/* an ALU op on operands of dtype dt (the result's, except for comparisons) */
expr lg_rc_op_expr(rnd *r, int32_t op, lg_dtype dt, const expr *a, const expr *b, const expr *c, lg_lin_facts f) {
  switch (op) {
  case LG_OP_CMPLT: return lg_rc_build(r, P_REL, "$ < $", a, P_SHIFT, b, P_SHIFT);
  case LG_OP_CMPNE: return lg_rc_build(r, P_EQ, "$ != $", a, P_SHIFT, b, P_SHIFT);
  case LG_OP_CMPEQ: return lg_rc_build(r, P_EQ, "$ == $", a, P_SHIFT, b, P_SHIFT);
  case LG_OP_WHERE: return lg_rc_build(r, P_COND, "$ ? $ : $", a, P_BOR, b, P_BOR, c, P_BOR);
  default: break;
  }
  char k = lg_dtype_kind(dt);
  if (k == 'f') return float_op(r, op, dt, a, b, c);
  if (k != 'b') return int_op(r, op, dt, a, b, c, f);
  switch (op) { /* bool: MAX is OR */
  case LG_OP_AND: return lg_rc_build(r, P_BAND, "$ & $", a, P_UNARY, b, P_UNARY);
  case LG_OP_XOR: return lg_rc_build(r, P_BXOR, "$ ^ $", a, P_UNARY, b, P_UNARY);
  default: return lg_rc_build(r, P_BOR, "$ | $", a, P_UNARY, b, P_UNARY);
  }
}

expr lg_rc_cast_expr(rnd *r, lg_dtype to, lg_dtype from, const expr *a) {
  char t[64];
  if (to == from) return lg_rc_build(r, a->prec, "$", a, P_ANY);
  if (lg_dtype_kind(to) == 'b') return lg_rc_build(r, P_EQ, "$ != 0", a, P_SHIFT);
  if (lg_dt_is_int(to) && lg_dt_is_float(from)) return call(r, H_FTOI, to, 0, a, NULL);
  if (!lg_rc_is_bf16(to)) {
    snprintf(t, sizeof t, "(%s)$", lg_rc_ctype(to));
    return lg_rc_build(r, P_UNARY, t, a, P_UNARY);
  }
  switch (lg_rc_sid(from)) { /* to bfloat16, rounding once */
  case LG_DT_INT64:
  case LG_DT_UINT64:
    lg_rc_need(r, H_ODD, 0, 0);
    snprintf(t, sizeof t, "bf16_round_double(odd_double_%s($))", lg_rc_sfx(from));
    return lg_rc_build(r, P_PRIMARY, t, a, P_ANY);
  case LG_DT_FLOAT64:
  case LG_DT_INT32:
  case LG_DT_UINT32: lg_rc_need(r, H_BF16_DOUBLE, 0, 0); return lg_rc_build(r, P_PRIMARY, "bf16_round_double($)", a, P_ANY);
  default: lg_rc_need(r, H_BF16, 0, 0); return lg_rc_build(r, P_PRIMARY, "bf16_round($)", a, P_ANY); /* exact in float */
  }
}

expr lg_rc_bitcast_expr(rnd *r, lg_dtype to, lg_dtype from, const expr *a) {
  if (to == from || lg_dtype_kind(to) == 'b' || lg_dtype_kind(from) == 'b') return lg_rc_cast_expr(r, to, from, a);
  return call(r, H_BITCAST, to, from, a, NULL);
}

/* ---- nodes ---------------------------------------------------------------------------------------- */

int64_t lg_rc_slot_of(const rnd *r, const lg_uop *u) {
  void *v = NULL;
  lg_ptrmap_get(&r->slot, u, &v);
  return (int64_t)(intptr_t)v - 1;
}

expr *lg_rc_ex(const rnd *r, const lg_uop *u) { return &r->ex[lg_rc_slot_of(r, u)]; }

void lg_rc_set_name(rnd *r, const lg_uop *u, const char *fmt, int64_t n) {
  char s[48];
  snprintf(s, sizeof s, fmt, (long long)n);
  *lg_rc_ex(r, u) = lg_rc_build(r, P_PRIMARY, s);
}

/* buffer access through an INDEX: data1[i], as a value for bfloat16 */
void lg_rc_access_tmpl(const lg_uop *idx, char *out, size_t size) {
  const lg_uop *buf = idx->src[0];
  bool bf = lg_rc_is_bf16(lg_dtype_base(buf->dtype));
  snprintf(out, size, "%sdata%lld[$]%s", bf ? "bf16_to_float(" : "", (long long)buf->arg.i, bf ? ")" : "");
}

static void load(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u, *idx = u->src[0];
  char acc[64], tm[96];
  lg_rc_access_tmpl(idx, acc, sizeof acc);
  if (lg_rc_is_bf16(u->dtype)) lg_rc_need(r, H_BF16, 0, 0);
  expr v;
  if (idx->nsrc == 3) { /* gated: the address is only computed and read under the gate */
    expr zero = {0};
    if (u->nsrc < 2) zero = lg_rc_literal(r, u->dtype, 0, 0.0);
    snprintf(tm, sizeof tm, "$ ? %s : $", acc);
    v = lg_rc_build(r, P_COND, tm, lg_rc_ex(r, idx->src[2]), P_BOR, lg_rc_ex(r, idx->src[1]), P_ANY,
                    u->nsrc > 1 ? lg_rc_ex(r, u->src[1]) : &zero, P_BOR);
    free(zero.s);
  } else {
    v = lg_rc_build(r, P_PRIMARY, acc, lg_rc_ex(r, idx->src[1]), P_ANY);
  }
  lg_rc_line(r, in->depth, "%s val%d = %s;", lg_rc_ctype(u->dtype), r->nval, v.s ? v.s : "");
  free(v.s);
  lg_rc_set_name(r, u, "val%lld", r->nval++);
}

static void store(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u, *idx = u->src[0];
  const lg_uop *buf = idx->src[0];
  expr v = lg_rc_build(r, P_ANY, lg_rc_is_bf16(u->src[1]->dtype) ? "float_to_bf16($)" : "$", lg_rc_ex(r, u->src[1]), P_ANY);
  if (lg_rc_is_bf16(u->src[1]->dtype)) lg_rc_need(r, H_BF16, 0, 0);
  const char *i = lg_rc_ex(r, idx->src[1])->s, *g = idx->nsrc == 3 ? lg_rc_ex(r, idx->src[2])->s : NULL;
  if (g)
    lg_rc_line(r, in->depth, "if (%s) data%lld[%s] = %s;", g, (long long)buf->arg.i, i ? i : "", v.s ? v.s : "");
  else
    lg_rc_line(r, in->depth, "data%lld[%s] = %s;", (long long)buf->arg.i, i ? i : "", v.s ? v.s : "");
  free(v.s);
}

/* ALU, CAST, BITCAST: inline when used once, else a variable */
static void value(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u;
  const expr *a = lg_rc_ex(r, u->src[0]), *b = u->nsrc > 1 ? lg_rc_ex(r, u->src[1]) : NULL,
             *c = u->nsrc > 2 ? lg_rc_ex(r, u->src[2]) : NULL;
  expr v = u->op == LG_OP_CAST      ? lg_rc_cast_expr(r, u->dtype, u->src[0]->dtype, a)
           : u->op == LG_OP_BITCAST ? lg_rc_bitcast_expr(r, u->dtype, u->src[0]->dtype, a)
                                    : lg_rc_op_expr(r, u->op, u->dtype, a, b, c, lg_lin_facts_of(u));
  if (r->refs[lg_rc_slot_of(r, u)] == 1 && v.s && strlen(v.s) <= INLINE_MAX) {
    *lg_rc_ex(r, u) = v;
    return;
  }
  lg_rc_line(r, in->depth, "%s alu%d = %s;", lg_rc_ctype(u->dtype), r->nalu, v.s ? v.s : "");
  free(v.s);
  lg_rc_set_name(r, u, "alu%lld", r->nalu++);
}

static void reduce_init(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u;
  lg_dtype dt = u->dtype;
  int32_t op = lg_lin_reduce_op(u);
  int64_t lo = 0, hi; /* MAX starts at the lowest value: -inf, INT32_MIN, 0 (uint64 too: left as is) */
  if (op == LG_OP_MAX && !lg_dt_is_float(dt)) lg_dt_int_range(dt, &lo, &hi);
  expr id = op == LG_OP_MAX ? lg_rc_literal(r, dt, lo, -INFINITY) : lg_rc_literal(r, dt, op == LG_OP_MUL, op == LG_OP_MUL);
  lg_rc_line(r, in->depth, "%s acc%d = %s;", lg_rc_ctype(dt), r->nacc, id.s ? id.s : "");
  free(id.s);
  lg_rc_set_name(r, u, "acc%lld", r->nacc++);
}

int32_t lg_rc_users_of(const void *r, const lg_uop *u) { return ((const rnd *)r)->users[lg_rc_slot_of(r, u)]; }

static void reduce_update(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u;
  const expr *acc = lg_rc_ex(r, u);
  const lg_uop *terms[LG_LIN_FMA_TERMS];
  bool fused[LG_LIN_FMA_TERMS];
  int32_t n = lg_lin_fma_terms(u, lg_rc_users_of, r, terms, fused);
  if (n > 0) { /* fused multiply-adds, as BLAS does (linearize.h) */
    const char *f = lg_rc_sid(u->dtype) == LG_DT_FLOAT64 ? "fma" : "fmaf";
    char tm[32];
    expr e = lg_rc_build(r, acc->prec, "$", acc, P_ANY);
    for (int32_t i = 0; i < n; i++) {
      expr next;
      if (fused[i]) {
        snprintf(tm, sizeof tm, "%s($, $, $)", f);
        next = lg_rc_build(r, P_PRIMARY, tm, lg_rc_ex(r, terms[i]->src[0]), P_ANY, lg_rc_ex(r, terms[i]->src[1]), P_ANY,
                           &e, P_ANY);
      } else {
        next = lg_rc_build(r, P_ADD, "$ + $", &e, P_ADD, lg_rc_ex(r, terms[i]), P_ADD + 1);
      }
      free(e.s), e = next;
    }
    lg_rc_line(r, in->depth, "%s = %s;", acc->s ? acc->s : "", e.s ? e.s : "");
    free(e.s);
    return;
  }
  expr v = lg_rc_op_expr(r, lg_lin_reduce_op(u), u->dtype, acc, lg_rc_ex(r, u->src[0]), NULL, (lg_lin_facts){0});
  lg_rc_line(r, in->depth, "%s = %s;", acc->s ? acc->s : "", v.s ? v.s : "");
  free(v.s);
}

static void loop_open(rnd *r, const lg_lin_inst *in, bool split) {
  lg_uop *u = in->u;
  long long axis = (long long)u->arg.ints[0];
  const char *t = lg_rc_ctype(u->dtype);
  char name[32], tm[256];
  snprintf(name, sizeof name, axis >= 0 ? "ridx%lld" : "ridxn%lld", axis >= 0 ? axis : -axis);
  if (split) {
    const expr *n = lg_rc_ex(r, u->src[0]);
    snprintf(tm, sizeof tm, "const %s start = (int64_t)$ * core_id / ncores, end = (int64_t)$ * (core_id + 1) / ncores;", t);
    expr bounds = lg_rc_build(r, P_ANY, tm, n, P_UNARY, n, P_UNARY);
    lg_rc_line(r, in->depth, "/* %s is split over the cores: this one runs [start, end) */", name);
    lg_rc_line(r, in->depth, "%s", bounds.s ? bounds.s : "");
    lg_rc_line(r, in->depth, "for (%s %s = start; %s < end; %s++) {", t, name, name, name);
    free(bounds.s);
  } else {
    snprintf(tm, sizeof tm, "for (%s %s = 0; %s < $; %s++) {", t, name, name, name);
    expr e = lg_rc_build(r, P_ANY, tm, lg_rc_ex(r, u->src[0]), P_SHIFT);
    lg_rc_line(r, in->depth, "%s", e.s ? e.s : "");
    free(e.s);
  }
  *lg_rc_ex(r, u) = lg_rc_build(r, P_PRIMARY, name);
}

static void walk(rnd *r) {
  if (r->split_open < 0) lg_rc_line(r, 0, "if (core_id != 0) return; /* not split over the cores: core 0 does it all */");
  for (int64_t k = 0; k < r->lin.n; k++) {
    const lg_lin_inst *in = &r->lin.inst[k];
    lg_uop *u = in->u;
    switch (in->kind) {
    case LG_LIN_OPEN: loop_open(r, in, k == r->split_open); break;
    case LG_LIN_CLOSE:
      lg_rc_line(r, in->depth, "}");
      for (int64_t i = 0; i < r->ln.nfinishing; i++)
        if (r->ln.finish_at[lg_rc_slot_of(r, r->ln.finishing[i])] == u) lg_rc_vreduce_finish(r, r->ln.finishing[i], in->depth);
      break;
    case LG_LIN_INIT: (r->ln.vacc[lg_rc_slot_of(r, u)] ? lg_rc_vreduce_init : reduce_init)(r, in); break;
    case LG_LIN_UPDATE:
      if (!r->ln.vacc[lg_rc_slot_of(r, u)]) {
        reduce_update(r, in);
        break;
      }
      lg_rc_vreduce_update(r, in);
      if (!lg_rc_is_vec(r, u) && !r->ln.finish_at[lg_rc_slot_of(r, u)]) lg_rc_vreduce_finish(r, u, in->depth);
      break;
    default:
      switch (u->op) {
      case LG_OP_CONST: *lg_rc_ex(r, u) = lg_rc_literal(r, u->dtype, u->arg.i, u->arg.f); break;
      case LG_OP_RANGE: lg_rc_lanes_value(r, in); break;
      case LG_OP_LOAD: (lg_rc_is_vec(r, u) ? lg_rc_vload : load)(r, in); break;
      case LG_OP_STORE: (lg_rc_is_vec(r, u) ? lg_rc_vstore : store)(r, in); break;
      case LG_OP_DEFINE_GLOBAL: /* named before the walk */
      case LG_OP_DEFINE_VAR:
      case LG_OP_INDEX: /* written by its LOADs and STOREs */
      case LG_OP_END:
      case LG_OP_GROUP:
      case LG_OP_SINK: break;
      default: (lg_rc_is_vec(r, u) ? lg_rc_vvalue : value)(r, in); break;
      }
    }
  }
}

/* ---- checks, names, uses ------------------------------------------------------------------------- */

static lg_status check_node(rnd *r, const lg_uop *u) {
  char msg[256];
  return lg_lin_check_node(u, "the C renderer", msg, sizeof msg) ? lg_rc_fail(r, u, "%s", msg) : LG_OK;
}

static int by_slot(const void *a, const void *b) {
  int64_t x = (*(lg_uop *const *)a)->arg.i, y = (*(lg_uop *const *)b)->arg.i;
  return (x > y) - (x < y);
}

static int by_name(const void *a, const void *b) {
  return strcmp((*(lg_uop *const *)a)->arg.s, (*(lg_uop *const *)b)->arg.s);
}

static bool is_ident(const char *s) {
  if (!s || !(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) return false;
  for (; *s; s++)
    if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9'))) return false;
  return true;
}

static int64_t slot_cb(const void *r, const lg_uop *u) { return lg_rc_slot_of(r, u); } /* for lg_lin_lanes_of */

/* slots, checks, parameters (sorted, named) and how often each node's text is used */
static lg_status prepass(rnd *r) {
  for (int64_t k = 0; k < r->lin.n; k++)
    if (lg_lin_has_slot(r->lin.inst[k].kind) && !lg_ptrmap_put(&r->slot, r->lin.inst[k].u, (void *)(intptr_t)++r->nslots))
      return lg_ctx_fail(r->ctx, LG_ERR_NOMEM, "render C: out of memory");
  r->ex = calloc((size_t)r->nslots, sizeof *r->ex);
  r->refs = calloc((size_t)r->nslots, sizeof *r->refs);
  r->users = calloc((size_t)r->nslots, sizeof *r->users);
  r->globals = malloc((size_t)r->nslots * sizeof *r->globals);
  r->vars = malloc((size_t)r->nslots * sizeof *r->vars);
  if (!r->ex || !r->refs || !r->users || !r->globals || !r->vars)
    return lg_ctx_fail(r->ctx, LG_ERR_NOMEM, "render C: out of memory");
  for (int64_t k = 0; k < r->lin.n; k++) {
    lg_uop *u = r->lin.inst[k].u;
    if (!lg_lin_has_slot(r->lin.inst[k].kind)) continue;
    for (int32_t i = 0; i < u->nsrc; i++) r->users[lg_rc_slot_of(r, u->src[i])]++;
    lg_status st = check_node(r, u);
    if (st) return st;
    if (u->op == LG_OP_DEFINE_GLOBAL) r->globals[r->nglobals++] = u;
    if (u->op == LG_OP_DEFINE_VAR) r->vars[r->nvars++] = u;
    if (u->op == LG_OP_STORE && !lg_ptrmap_put(&r->stored, u->src[0]->src[0], NULL))
      return lg_ctx_fail(r->ctx, LG_ERR_NOMEM, "render C: out of memory");
  }
  qsort(r->globals, (size_t)r->nglobals, sizeof *r->globals, by_slot);
  qsort(r->vars, (size_t)r->nvars, sizeof *r->vars, by_name);
  for (int64_t i = 0; i < r->nglobals; i++) {
    if (i > 0 && r->globals[i]->arg.i == r->globals[i - 1]->arg.i)
      return lg_rc_fail(r, r->globals[i], "another DEFINE_GLOBAL has the same slot with another dtype");
    lg_rc_set_name(r, r->globals[i], "data%lld", r->globals[i]->arg.i);
  }
  for (int64_t i = 0; i < r->nvars; i++) {
    const char *s = r->vars[i]->arg.s;
    if (i > 0 && strcmp(s, r->vars[i - 1]->arg.s) == 0)
      return lg_rc_fail(r, r->vars[i], "another DEFINE_VAR has the same name (its place in ints is ambiguous)");
    if (is_ident(s) && strlen(s) < 32) {
      char name[40];
      snprintf(name, sizeof name, "var_%s", s);
      *lg_rc_ex(r, r->vars[i]) = lg_rc_build(r, P_PRIMARY, name);
    } else {
      lg_rc_set_name(r, r->vars[i], "var%lld", i);
    }
  }
  lg_status st = lg_lin_lanes_of(r->ctx, &r->lin, r->nslots, slot_cb, r, "render C", &r->ln);
  if (st) return st;
  for (int64_t k = r->lin.n - 1; k >= 0; k--) {
    lg_uop *u = r->lin.inst[k].u;
    if (!lg_lin_has_slot(r->lin.inst[k].kind)) continue;
    const lg_uop *base;
    if (u->op == LG_OP_INDEX && lg_rc_is_vec(r, u) &&
        (lg_rc_contiguous(r, u, &base) || lg_rc_strided2(r, u, &base) || lg_rc_halves(r, u, &base))) {
      /* the base, not ADD(base, lane) */
      int64_t w = r->refs[lg_rc_slot_of(r, u)];
      if (base) r->refs[lg_rc_slot_of(r, base)] += w;
      if (u->nsrc == 3) r->refs[lg_rc_slot_of(r, u->src[2])] += w;
      continue;
    }
    if (lg_rc_is_vec(r, u) && (u->op == LG_OP_INDEX || (u->op != LG_OP_LOAD && u->op != LG_OP_STORE && lg_rc_lane_loop(r, u))))
      for (int32_t i = 0; i < u->nsrc; i++) /* used in a loop over the lanes: a variable, computed once */
        if (lg_rc_is_vec(r, u->src[i])) r->refs[lg_rc_slot_of(r, u->src[i])] += 2;
    bool text = lg_op_has(u->op, LG_OPF_ALU) || u->op == LG_OP_CAST || u->op == LG_OP_BITCAST || u->op == LG_OP_LOAD ||
                u->op == LG_OP_STORE || u->op == LG_OP_INDEX;
    int32_t uses = u->op == LG_OP_RANGE || u->op == LG_OP_REDUCE ? 1 : text ? u->nsrc : 0;
    int64_t w = u->op == LG_OP_INDEX ? r->refs[lg_rc_slot_of(r, u)] : 1; /* an INDEX is written at each use */
    for (int32_t i = 0; i < uses; i++) r->refs[lg_rc_slot_of(r, u->src[i])] += w;
  }
  return LG_OK;
}

static lg_status assemble(rnd *r, const char *name, char **src) {
  lg_strbuf out = {0};
  lg_strbuf_put(&out, "#include <stdint.h>\n#include <math.h>\n\n");
  if (r->pre.len) lg_strbuf_put(&out, "%s\n", r->pre.p);
  if (r->split_open >= 0)
    lg_strbuf_put(&out, "/* for the launcher: the split loop's iterations, the work of one */\n");
  else
    lg_strbuf_put(&out, "/* for the launcher: nothing is split over the cores */\n");
  lg_strbuf_put(&out, "const int64_t %s_split[2] = {%lld, %lld};\n\n", name, (long long)r->split_trips,
      (long long)r->split_work);
  lg_strbuf_put(&out, "void %s(void **bufs, const int64_t *ints, int32_t core_id, int32_t ncores) {\n", name);
  for (int64_t i = 0; i < r->nglobals; i++) {
    const lg_uop *g = r->globals[i];
    const char *c = lg_ptrmap_get(&r->stored, g, NULL) ? "" : "const ", *t = stype(lg_dtype_base(g->dtype));
    lg_strbuf_put(&out, "  %s%s *restrict data%lld = (%s%s *)bufs[%lld];\n", c, t, (long long)g->arg.i, c, t,
        (long long)g->arg.i);
  }
  for (int64_t i = 0; i < r->nvars; i++) {
    const char *t = lg_rc_ctype(r->vars[i]->dtype), *s = lg_rc_ex(r, r->vars[i])->s;
    lg_strbuf_put(&out, "  const %s %s = (%s)ints[%lld];\n", t, s ? s : "", t, (long long)i);
  }
  lg_strbuf_put(&out, "%s}\n", r->body.p ? r->body.p : "");
  if (out.oom || r->oom || r->pre.oom || r->body.oom) {
    free(out.p);
    return lg_ctx_fail(r->ctx, LG_ERR_NOMEM, "render C: out of memory");
  }
  *src = out.p;
  return LG_OK;
}

lg_status lg_render_c(lg_ctx *ctx, lg_uop *sink, const char *name, char **src) {
  *src = NULL;
  if (!is_ident(name))
    return lg_ctx_fail(ctx, LG_ERR_ARG, "render C: the kernel name '%s' is not a C identifier", name ? name : "(null)");
  lg_status st = lg_uop_verify(ctx, sink);
  if (st) return st;
  rnd r = {.ctx = ctx};
  st = lg_linearize(ctx, sink, &r.lin);
  if (!st) st = prepass(&r);
  if (!st) st = lg_lin_split(r.ctx, &r.lin, &r.split_open, &r.split_trips, &r.split_work);
  if (!st) walk(&r), st = assemble(&r, name, src);
  for (int64_t i = 0; r.ex && i < r.nslots; i++) free(r.ex[i].s);
  lg_lin_lanes_free(&r.ln);
  free(r.ex), free(r.refs), free(r.users), free(r.globals), free(r.vars), free(r.helpers), free(r.pre.p), free(r.body.p);
  lg_ptrmap_free(&r.slot);
  lg_ptrmap_free(&r.stored);
  lg_linear_free(&r.lin);
  return st;
}
