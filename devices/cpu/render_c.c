/* render_c.c: a kernel graph as C source for the CPU device (what DEBUG=4 shows); lg_render_c
 * in luagrad.h.
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
 *     accumulators `float acc0 = 0.0f;` then `acc0 = acc0 + x;`, stores `data0[i] = x;`;
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

#include "linearize.h"
#include "ptrmap.h"
#include "strbuf.h"

enum { INLINE_MAX = 100 };

/* C precedence levels: higher binds tighter */
enum {
  P_ANY = 0,
  P_COND = 3,
  P_BOR = 6,
  P_BXOR = 7,
  P_BAND = 8,
  P_EQ = 9,
  P_REL = 10,
  P_SHIFT = 11,
  P_ADD = 12,
  P_MUL = 13,
  P_UNARY = 14,
  P_PRIMARY = 15
};

/* helpers a kernel may need, emitted once each */
enum { H_BF16, H_BF16_DOUBLE, H_ODD, H_MAX, H_IDIV, H_MOD, H_SHL, H_SHR, H_FTOI, H_BITCAST, H_VTYPE, H_VALL, H_VWHERE, H_VMAX, H_VLOAD, H_VSTORE, H_VINTRIN, H_VGATHER, H_VFMA, H_VLANES, H_VLOAD2, H_VLOADH };

typedef struct expr {
  char *s;      /* C text; NULL when out of memory */
  int32_t prec; /* how tightly it binds */
} expr;

/* what the operands' bounds prove about an integer operation */
typedef struct facts {
  bool nowrap;      /* the result stays in range */
  bool div_plain;   /* IDIV/MOD: no division by 0 or INT_MIN / -1 */
  bool shift_plain; /* the amount is in [0, bits) */
  bool nonneg;      /* the first operand is >= 0 */
} facts;

typedef struct rnd {
  lg_ctx *ctx;
  lg_linear lin;
  lg_ptrmap slot;   /* node -> its slot + 1 */
  lg_ptrmap stored; /* DEFINE_GLOBALs the kernel stores into */
  int64_t nslots;
  expr *ex;         /* per slot: the node's C text */
  int64_t *refs;    /* per slot: how often the text is used */
  int32_t *users;   /* per slot: how many nodes of the kernel use the node */
  lg_uop **globals; /* DEFINE_GLOBALs by slot */
  int64_t nglobals;
  lg_uop **vars; /* DEFINE_VARs by name */
  int64_t nvars;
  uint32_t *helpers; /* keys of the helpers emitted */
  int32_t nhelpers, caphelpers;
  lg_strbuf pre, body;
  int32_t nval, nalu, nacc;
  int64_t split_open;              /* the split loop's OPEN; -1 when none */
  const lg_uop *lane;              /* the RANGE of the vector lanes (kind LG_RANGE_LANES), or NULL */
  int32_t lanes;                   /* its size */
  bool *vec;                       /* per slot: the node's value is a vector of the lanes */
  bool *vacc;                      /* per slot: a REDUCE's accumulator is a vector */
  const lg_uop **finish_at;        /* per slot: a REDUCE over the lanes adds them up after this
                                      loop's CLOSE (NULL: right after its update) */
  lg_uop **finishing;              /* the REDUCEs with a finish_at */
  int64_t nfinishing;
  int64_t split_trips, split_work; /* its iterations, the work of one */
  bool oom;
} rnd;

/* ---- text --------------------------------------------------------------------------------------- */

static lg_status fail(rnd *r, const lg_uop *u, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static lg_status fail(rnd *r, const lg_uop *u, const char *fmt, ...) {
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
static expr build(rnd *r, int32_t prec, const char *tmpl, ...) {
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
static void line(rnd *r, int32_t depth, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void line(rnd *r, int32_t depth, const char *fmt, ...) {
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

static int32_t sid(lg_dtype dt) { return lg_dt_scalar_id(dt); }
static int32_t bits(lg_dtype dt) { return 8 * lg_dtype_itemsize(dt); }
static bool narrow(lg_dtype dt) { return lg_dtype_itemsize(dt) < 4; }
static bool is_bf16(lg_dtype dt) { return sid(dt) == LG_DT_BFLOAT16; }

/* the C type of a value */
static const char *ctype(lg_dtype dt) {
  static const char *const names[LG_DT__COUNT] = {
      [LG_DT_BOOL] = "_Bool",       [LG_DT_INT8] = "int8_t",     [LG_DT_INT16] = "int16_t",
      [LG_DT_INT32] = "int32_t",    [LG_DT_INT64] = "int64_t",   [LG_DT_UINT8] = "uint8_t",
      [LG_DT_UINT16] = "uint16_t",  [LG_DT_UINT32] = "uint32_t", [LG_DT_UINT64] = "uint64_t",
      [LG_DT_FLOAT16] = "_Float16", [LG_DT_BFLOAT16] = "float",  [LG_DT_FLOAT32] = "float",
      [LG_DT_FLOAT64] = "double"};
  return names[sid(dt)] ? names[sid(dt)] : "void";
}

/* the C type of an element in memory */
static const char *stype(lg_dtype dt) { return is_bf16(dt) ? "uint16_t" : ctype(dt); }

/* the wide unsigned type integer arithmetic wraps in */
static const char *utype(lg_dtype dt) { return bits(dt) == 64 ? "uint64_t" : "uint32_t"; }

/* short dtype names for helpers */
static const char *sfx(lg_dtype dt) {
  static const char *const names[LG_DT__COUNT] = {
      [LG_DT_BOOL] = "bool",  [LG_DT_INT8] = "i8",     [LG_DT_INT16] = "i16",     [LG_DT_INT32] = "i32",
      [LG_DT_INT64] = "i64",  [LG_DT_UINT8] = "u8",    [LG_DT_UINT16] = "u16",    [LG_DT_UINT32] = "u32",
      [LG_DT_UINT64] = "u64", [LG_DT_FLOAT16] = "f16", [LG_DT_BFLOAT16] = "bf16", [LG_DT_FLOAT32] = "f32",
      [LG_DT_FLOAT64] = "f64"};
  return names[sid(dt)] ? names[sid(dt)] : "void";
}

static int32_t lit_prec(const char *s) { return s[0] == '-' || s[0] == '(' ? P_UNARY : P_PRIMARY; }

/* an integer or bool constant: 3, -3, (int8_t)-3, 4294967295u, -5ll, INT32_MIN */
static int32_t lit_int(lg_dtype dt, int64_t v, char *out, size_t size) {
  unsigned long long u = (unsigned long long)(uint64_t)v;
  switch (sid(dt)) {
  case LG_DT_BOOL: snprintf(out, size, "%d", v != 0); break;
  case LG_DT_INT8:
  case LG_DT_INT16: snprintf(out, size, "(%s)%lld", ctype(dt), (long long)v); break;
  case LG_DT_UINT8:
  case LG_DT_UINT16: snprintf(out, size, "(%s)%llu", ctype(dt), u); break;
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
  bool single = sid(dt) != LG_DT_FLOAT64;
  const char *cast = sid(dt) == LG_DT_FLOAT16 ? "(_Float16)" : "";
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

static expr literal(rnd *r, lg_dtype dt, int64_t i, double f) {
  char s[64];
  int32_t prec = lg_dt_is_float(dt) ? lit_float(dt, f, s, sizeof s) : lit_int(dt, i, s, sizeof s);
  return build(r, prec, s);
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
    snprintf(out, size, "bitcast_%s_%s", sfx(a), sfx(b));
  else
    snprintf(out, size, "%s_%s", prefix[kind], sfx(a));
}

static void need(rnd *r, int32_t kind, lg_dtype a, lg_dtype b);
static void vec_helper(rnd *r, int32_t kind, lg_dtype a, lg_dtype b);

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
    need(r, H_BF16, 0, 0);
    lg_strbuf_put(h, "/* a double to bfloat16 in one rounding: to float rounding to odd keeps the second one exact */\n"
           "static inline float bf16_round_double(double d) {\n"
           "  float f = (float)d;\n"
           "  uint32_t u;\n"
           "  __builtin_memcpy(&u, &f, 4);\n"
           "  if ((double)f != d && d == d && !(u & 1)) f = nextafterf(f, (double)f < d ? INFINITY : -INFINITY);\n"
           "  return bf16_round(f);\n"
           "}\n");
  } else {
    need(r, H_BF16_DOUBLE, 0, 0);
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
  const char *t = ctype(a), *u = utype(a);
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
static void need(rnd *r, int32_t kind, lg_dtype a, lg_dtype b) {
  uint32_t key = (uint32_t)kind | (uint32_t)sid(a) << 8 | (uint32_t)sid(b) << 16;
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
    vec_helper(r, kind, a, b);
  } else if (kind == H_MAX && lg_dt_is_float(a)) {
    const char *t = ctype(a);
    lg_strbuf_put(&r->pre,
        "static inline %s %s(%s a, %s b) { return a != a || b != b ? NAN : a > b || (a == b && !signbit(a)) ? a : b; }"
        " /* NaN wins; -0.0 < 0.0 */\n",
        t, name, t, t);
  } else if (kind == H_BITCAST) { /* to a from b */
    if (is_bf16(a) || is_bf16(b)) need(r, H_BF16, 0, 0);
    lg_strbuf_put(&r->pre, "static inline %s %s(%s x) { %s s = %s; %s t; __builtin_memcpy(&t, &s, sizeof t); return %s; }\n",
        ctype(a), name, ctype(b), stype(b), is_bf16(b) ? "float_to_bf16(x)" : "x", stype(a),
        is_bf16(a) ? "bf16_to_float(t)" : "t");
  } else {
    int_helper(r, kind, a, name);
  }
}

/* a call of helper (kind, a, b) on one or two operands */
static expr call(rnd *r, int32_t kind, lg_dtype a, lg_dtype b, const expr *x, const expr *y) {
  char t[64];
  need(r, kind, a, b);
  helper_name(kind, a, b, t, sizeof t - 8);
  strcat(t, y ? "($, $)" : "($)");
  return y ? build(r, P_PRIMARY, t, x, P_ANY, y, P_ANY) : build(r, P_PRIMARY, t, x, P_ANY);
}

/* ---- operations ---------------------------------------------------------------------------------- */

/* a float16 or bfloat16 result rounded to its dtype; float32 and float64 need nothing */
static expr round_to(rnd *r, lg_dtype dt, expr e) {
  if (sid(dt) != LG_DT_FLOAT16 && !is_bf16(dt)) return e;
  expr out;
  if (is_bf16(dt))
    need(r, H_BF16, 0, 0), out = build(r, P_PRIMARY, "bf16_round($)", &e, P_ANY);
  else
    out = build(r, P_UNARY, "(_Float16)$", &e, P_UNARY);
  free(e.s);
  return out;
}

static expr float_op(rnd *r, int32_t op, lg_dtype dt, const expr *a, const expr *b, const expr *c) {
  static const char *const fn[LG_OP__COUNT] = {[LG_OP_SQRT] = "sqrt", [LG_OP_EXP2] = "exp2",   [LG_OP_LOG2] = "log2",
                                               [LG_OP_SIN] = "sin",   [LG_OP_TRUNC] = "trunc", [LG_OP_POW] = "pow"};
  const char *f = sid(dt) == LG_DT_FLOAT64 ? "" : "f";
  char t[64];
  switch (op) {
  case LG_OP_ADD: return round_to(r, dt, build(r, P_ADD, "$ + $", a, P_ADD, b, P_ADD + 1));
  case LG_OP_SUB: return round_to(r, dt, build(r, P_ADD, "$ - $", a, P_ADD, b, P_ADD + 1));
  case LG_OP_MUL: return round_to(r, dt, build(r, P_MUL, "$ * $", a, P_MUL, b, P_MUL + 1));
  case LG_OP_FDIV: return round_to(r, dt, build(r, P_MUL, "$ / $", a, P_MUL, b, P_MUL + 1));
  case LG_OP_NEG: return build(r, P_UNARY, "-$", a, P_UNARY);
  case LG_OP_RECIPROCAL:
    snprintf(t, sizeof t, "1.0%s / $", f);
    return round_to(r, dt, build(r, P_MUL, t, a, P_MUL + 1));
  case LG_OP_MAX: return call(r, H_MAX, sid(dt) == LG_DT_FLOAT64 ? LG_DT_FLOAT64 : LG_DT_FLOAT32, 0, a, b);
  case LG_OP_MULACC: {
    expr m = round_to(r, dt, build(r, P_MUL, "$ * $", a, P_MUL, b, P_MUL + 1));
    expr s = round_to(r, dt, build(r, P_ADD, "$ + $", &m, P_ADD, c, P_ADD + 1));
    free(m.s);
    return s;
  }
  case LG_OP_POW:
    snprintf(t, sizeof t, "pow%s($, $)", f);
    return round_to(r, dt, build(r, P_PRIMARY, t, a, P_ANY, b, P_ANY));
  default: /* the unary functions; TRUNC is exact in every dtype */
    snprintf(t, sizeof t, "%s%s($)", fn[op], f);
    expr e = build(r, P_PRIMARY, t, a, P_ANY);
    return op == LG_OP_TRUNC ? e : round_to(r, dt, e);
  }
}

static expr int_op(rnd *r, int32_t op, lg_dtype dt, const expr *a, const expr *b, const expr *c, facts f) {
  const char *t = ctype(dt), *u = utype(dt);
  bool nar = narrow(dt), plain = f.nowrap || (lg_dtype_kind(dt) == 'u' && !nar); /* C gets it right as written */
  const char *widen = sid(dt) == LG_DT_UINT16 ? "(uint32_t)" : "";               /* 65535 * 65535 overflows int */
  char tm[160];
  switch (op) {
  case LG_OP_ADD:
  case LG_OP_SUB:
  case LG_OP_MUL: {
    const char *sym = op == LG_OP_ADD ? "+" : op == LG_OP_SUB ? "-" : "*";
    int32_t p = op == LG_OP_MUL ? P_MUL : P_ADD;
    if (plain) {
      snprintf(tm, sizeof tm, "$ %s $", sym);
      return build(r, p, tm, a, p, b, p + 1);
    }
    if (nar) {
      snprintf(tm, sizeof tm, "(%s)(%s$ %s $)", t, op == LG_OP_MUL ? widen : "", sym);
      return build(r, P_UNARY, tm, a, op == LG_OP_MUL && *widen ? P_UNARY : p, b, p + 1);
    }
    snprintf(tm, sizeof tm, "(%s)((%s)$ %s (%s)$)", t, u, sym, u);
    return build(r, P_UNARY, tm, a, P_UNARY, b, P_UNARY);
  }
  case LG_OP_NEG:
    if (plain) return build(r, P_UNARY, "-$", a, P_UNARY);
    if (nar)
      snprintf(tm, sizeof tm, "(%s)-$", t);
    else
      snprintf(tm, sizeof tm, "(%s)-(%s)$", t, u);
    return build(r, P_UNARY, tm, a, P_UNARY);
  case LG_OP_MULACC:
    if (plain) return build(r, P_ADD, "$ * $ + $", a, P_MUL, b, P_MUL + 1, c, P_ADD + 1);
    if (nar) {
      snprintf(tm, sizeof tm, "(%s)(%s$ * $ + $)", t, widen);
      return build(r, P_UNARY, tm, a, *widen ? P_UNARY : P_MUL, b, P_MUL + 1, c, P_ADD + 1);
    }
    snprintf(tm, sizeof tm, "(%s)((%s)$ * (%s)$ + (%s)$)", t, u, u, u);
    return build(r, P_UNARY, tm, a, P_UNARY, b, P_UNARY, c, P_UNARY);
  case LG_OP_IDIV:
  case LG_OP_MOD:
    if (!f.div_plain) return call(r, op == LG_OP_IDIV ? H_IDIV : H_MOD, dt, 0, a, b);
    if (op == LG_OP_MOD) return build(r, P_MUL, "$ % $", a, P_MUL, b, P_MUL + 1);
    if (!nar || f.nowrap) return build(r, P_MUL, "$ / $", a, P_MUL, b, P_MUL + 1);
    snprintf(tm, sizeof tm, "(%s)($ / $)", t); /* INT8_MIN / -1 */
    return build(r, P_UNARY, tm, a, P_MUL, b, P_MUL + 1);
  case LG_OP_MAX: return call(r, H_MAX, dt, 0, a, b);
  case LG_OP_AND: return build(r, P_BAND, "$ & $", a, P_UNARY, b, P_UNARY);
  case LG_OP_OR: return build(r, P_BOR, "$ | $", a, P_UNARY, b, P_UNARY);
  case LG_OP_XOR: return build(r, P_BXOR, "$ ^ $", a, P_UNARY, b, P_UNARY);
  case LG_OP_SHL:
    if (!f.shift_plain) return call(r, H_SHL, dt, 0, a, b);
    if (f.nowrap && f.nonneg) return build(r, P_SHIFT, "$ << $", a, P_UNARY, b, P_UNARY);
    snprintf(tm, sizeof tm, "(%s)((%s)$ << $)", t, u);
    return build(r, P_UNARY, tm, a, P_UNARY, b, P_UNARY);
  default: /* SHR: C's >> of a negative value is arithmetic in gcc and clang, as core/alu.c folds */
    if (!f.shift_plain) return call(r, H_SHR, dt, 0, a, b);
    return build(r, P_SHIFT, "$ >> $", a, P_UNARY, b, P_UNARY);
  }
}

/* an ALU op on operands of dtype dt (the result's, except for comparisons) */
static expr op_expr(rnd *r, int32_t op, lg_dtype dt, const expr *a, const expr *b, const expr *c, facts f) {
  switch (op) {
  case LG_OP_CMPLT: return build(r, P_REL, "$ < $", a, P_SHIFT, b, P_SHIFT);
  case LG_OP_CMPNE: return build(r, P_EQ, "$ != $", a, P_SHIFT, b, P_SHIFT);
  case LG_OP_CMPEQ: return build(r, P_EQ, "$ == $", a, P_SHIFT, b, P_SHIFT);
  case LG_OP_WHERE: return build(r, P_COND, "$ ? $ : $", a, P_BOR, b, P_BOR, c, P_BOR);
  default: break;
  }
  char k = lg_dtype_kind(dt);
  if (k == 'f') return float_op(r, op, dt, a, b, c);
  if (k != 'b') return int_op(r, op, dt, a, b, c, f);
  switch (op) { /* bool: MAX is OR */
  case LG_OP_AND: return build(r, P_BAND, "$ & $", a, P_UNARY, b, P_UNARY);
  case LG_OP_XOR: return build(r, P_BXOR, "$ ^ $", a, P_UNARY, b, P_UNARY);
  default: return build(r, P_BOR, "$ | $", a, P_UNARY, b, P_UNARY);
  }
}

static expr cast_expr(rnd *r, lg_dtype to, lg_dtype from, const expr *a) {
  char t[64];
  if (to == from) return build(r, a->prec, "$", a, P_ANY);
  if (lg_dtype_kind(to) == 'b') return build(r, P_EQ, "$ != 0", a, P_SHIFT);
  if (lg_dt_is_int(to) && lg_dt_is_float(from)) return call(r, H_FTOI, to, 0, a, NULL);
  if (!is_bf16(to)) {
    snprintf(t, sizeof t, "(%s)$", ctype(to));
    return build(r, P_UNARY, t, a, P_UNARY);
  }
  switch (sid(from)) { /* to bfloat16, rounding once */
  case LG_DT_INT64:
  case LG_DT_UINT64:
    need(r, H_ODD, 0, 0);
    snprintf(t, sizeof t, "bf16_round_double(odd_double_%s($))", sfx(from));
    return build(r, P_PRIMARY, t, a, P_ANY);
  case LG_DT_FLOAT64:
  case LG_DT_INT32:
  case LG_DT_UINT32: need(r, H_BF16_DOUBLE, 0, 0); return build(r, P_PRIMARY, "bf16_round_double($)", a, P_ANY);
  default: need(r, H_BF16, 0, 0); return build(r, P_PRIMARY, "bf16_round($)", a, P_ANY); /* exact in float */
  }
}

static expr bitcast_expr(rnd *r, lg_dtype to, lg_dtype from, const expr *a) {
  if (to == from || lg_dtype_kind(to) == 'b' || lg_dtype_kind(from) == 'b') return cast_expr(r, to, from, a);
  return call(r, H_BITCAST, to, from, a, NULL);
}

/* ---- nodes ---------------------------------------------------------------------------------------- */

static int64_t slot_of(const rnd *r, const lg_uop *u) {
  void *v = NULL;
  lg_ptrmap_get(&r->slot, u, &v);
  return (int64_t)(intptr_t)v - 1;
}

static expr *ex(const rnd *r, const lg_uop *u) { return &r->ex[slot_of(r, u)]; }

static void set_name(rnd *r, const lg_uop *u, const char *fmt, int64_t n) {
  char s[48];
  snprintf(s, sizeof s, fmt, (long long)n);
  *ex(r, u) = build(r, P_PRIMARY, s);
}

/* what the operands' bounds prove about an integer op */
static facts facts_of(const lg_uop *u) {
  facts f = {0};
  int64_t lo, hi;
  bool ranged = lg_dt_int_range(u->dtype, &lo, &hi);
  f.nowrap = ranged && u->has_bounds && (u->vmin > lo || u->vmax < hi);
  if (u->nsrc < 2) return f;
  const lg_uop *a = u->src[0], *b = u->src[1];
  f.nonneg = a->has_bounds && a->vmin >= 0;
  f.shift_plain = b->has_bounds && b->vmin >= 0 && b->vmax < bits(u->dtype);
  bool minus_one = b->vmin <= -1 && b->vmax >= -1, int_min = ranged && a->has_bounds && a->vmin == lo;
  f.div_plain = b->has_bounds && (b->vmin > 0 || b->vmax < 0) &&
                (lg_dtype_kind(u->dtype) == 'u' || narrow(u->dtype) || !(minus_one && int_min));
  return f;
}


/* buffer access through an INDEX: data1[i], as a value for bfloat16 */
static void access_tmpl(const lg_uop *idx, char *out, size_t size) {
  const lg_uop *buf = idx->src[0];
  bool bf = is_bf16(lg_dtype_base(buf->dtype));
  snprintf(out, size, "%sdata%lld[$]%s", bf ? "bf16_to_float(" : "", (long long)buf->arg.i, bf ? ")" : "");
}

static void load(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u, *idx = u->src[0];
  char acc[64], tm[96];
  access_tmpl(idx, acc, sizeof acc);
  if (is_bf16(u->dtype)) need(r, H_BF16, 0, 0);
  expr v;
  if (idx->nsrc == 3) { /* gated: the address is only computed and read under the gate */
    expr zero = {0};
    if (u->nsrc < 2) zero = literal(r, u->dtype, 0, 0.0);
    snprintf(tm, sizeof tm, "$ ? %s : $", acc);
    v = build(r, P_COND, tm, ex(r, idx->src[2]), P_BOR, ex(r, idx->src[1]), P_ANY,
              u->nsrc > 1 ? ex(r, u->src[1]) : &zero, P_BOR);
    free(zero.s);
  } else {
    v = build(r, P_PRIMARY, acc, ex(r, idx->src[1]), P_ANY);
  }
  line(r, in->depth, "%s val%d = %s;", ctype(u->dtype), r->nval, v.s ? v.s : "");
  free(v.s);
  set_name(r, u, "val%lld", r->nval++);
}

static void store(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u, *idx = u->src[0];
  const lg_uop *buf = idx->src[0];
  expr v = build(r, P_ANY, is_bf16(u->src[1]->dtype) ? "float_to_bf16($)" : "$", ex(r, u->src[1]), P_ANY);
  if (is_bf16(u->src[1]->dtype)) need(r, H_BF16, 0, 0);
  const char *i = ex(r, idx->src[1])->s, *g = idx->nsrc == 3 ? ex(r, idx->src[2])->s : NULL;
  if (g)
    line(r, in->depth, "if (%s) data%lld[%s] = %s;", g, (long long)buf->arg.i, i ? i : "", v.s ? v.s : "");
  else
    line(r, in->depth, "data%lld[%s] = %s;", (long long)buf->arg.i, i ? i : "", v.s ? v.s : "");
  free(v.s);
}

/* ALU, CAST, BITCAST: inline when used once, else a variable */
static void value(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u;
  const expr *a = ex(r, u->src[0]), *b = u->nsrc > 1 ? ex(r, u->src[1]) : NULL,
             *c = u->nsrc > 2 ? ex(r, u->src[2]) : NULL;
  expr v = u->op == LG_OP_CAST      ? cast_expr(r, u->dtype, u->src[0]->dtype, a)
           : u->op == LG_OP_BITCAST ? bitcast_expr(r, u->dtype, u->src[0]->dtype, a)
                                    : op_expr(r, u->op, u->dtype, a, b, c, facts_of(u));
  if (r->refs[slot_of(r, u)] == 1 && v.s && strlen(v.s) <= INLINE_MAX) {
    *ex(r, u) = v;
    return;
  }
  line(r, in->depth, "%s alu%d = %s;", ctype(u->dtype), r->nalu, v.s ? v.s : "");
  free(v.s);
  set_name(r, u, "alu%lld", r->nalu++);
}

static void reduce_init(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u;
  lg_dtype dt = u->dtype;
  int32_t op = lg_lin_reduce_op(u);
  int64_t lo = 0, hi; /* MAX starts at the lowest value: -inf, INT32_MIN, 0 (uint64 too: left as is) */
  if (op == LG_OP_MAX && !lg_dt_is_float(dt)) lg_dt_int_range(dt, &lo, &hi);
  expr id = op == LG_OP_MAX ? literal(r, dt, lo, -INFINITY) : literal(r, dt, op == LG_OP_MUL, op == LG_OP_MUL);
  line(r, in->depth, "%s acc%d = %s;", ctype(dt), r->nacc, id.s ? id.s : "");
  free(id.s);
  set_name(r, u, "acc%lld", r->nacc++);
}

static int32_t users_of(const void *r, const lg_uop *u) { return ((const rnd *)r)->users[slot_of(r, u)]; }

static void reduce_update(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u;
  const expr *acc = ex(r, u);
  const lg_uop *terms[LG_LIN_FMA_TERMS];
  bool fused[LG_LIN_FMA_TERMS];
  int32_t n = lg_lin_fma_terms(u, users_of, r, terms, fused);
  if (n > 0) { /* fused multiply-adds, as BLAS does (linearize.h) */
    const char *f = sid(u->dtype) == LG_DT_FLOAT64 ? "fma" : "fmaf";
    char tm[32];
    expr e = build(r, acc->prec, "$", acc, P_ANY);
    for (int32_t i = 0; i < n; i++) {
      expr next;
      if (fused[i]) {
        snprintf(tm, sizeof tm, "%s($, $, $)", f);
        next = build(r, P_PRIMARY, tm, ex(r, terms[i]->src[0]), P_ANY, ex(r, terms[i]->src[1]), P_ANY, &e, P_ANY);
      } else {
        next = build(r, P_ADD, "$ + $", &e, P_ADD, ex(r, terms[i]), P_ADD + 1);
      }
      free(e.s), e = next;
    }
    line(r, in->depth, "%s = %s;", acc->s ? acc->s : "", e.s ? e.s : "");
    free(e.s);
    return;
  }
  expr v = op_expr(r, lg_lin_reduce_op(u), u->dtype, acc, ex(r, u->src[0]), NULL, (facts){0});
  line(r, in->depth, "%s = %s;", acc->s ? acc->s : "", v.s ? v.s : "");
  free(v.s);
}

/* ---- vector lanes ----------------------------------------------------------------------------------
 * A kernel with a RANGE of kind LG_RANGE_LANES (opt.vectorize) computes its W lanes at once: every
 * value that depends on the lanes is a GCC vector (`f32x16`, vector_size(64)) and bool lanes are
 * int32 masks (0 or -1, what a vector comparison gives). An access whose index is ADD(base, lane)
 * (opt.lua writes contiguous ones so) loads or stores a whole vector through an unaligned type
 * (`f32x16_u`). What C has no vector form for runs as a loop over the lanes, which gcc unrolls:
 * the libm functions, saturating float-to-int casts, division and shifts that need the helpers,
 * gathers and scatters, accesses gated per lane. A REDUCE over the lanes keeps a vector
 * accumulator and adds its lanes up once its loops are done. */

typedef struct vname {
  char s[16];
} vname;

static bool is_vec(const rnd *r, const lg_uop *u) { return r->vec[slot_of(r, u)]; }
static bool is_mask(lg_dtype dt) { return lg_dtype_kind(dt) == 'b'; }
static lg_dtype lane_dt(lg_dtype dt) { return is_mask(dt) ? LG_DT_INT32 : dt; }

/* the signed or unsigned integer dtype of the size of dt's lanes */
static lg_dtype int_of(lg_dtype dt, bool sgn) {
  static const lg_dtype s[9] = {[1] = LG_DT_INT8, [2] = LG_DT_INT16, [4] = LG_DT_INT32, [8] = LG_DT_INT64};
  static const lg_dtype u[9] = {[1] = LG_DT_UINT8, [2] = LG_DT_UINT16, [4] = LG_DT_UINT32, [8] = LG_DT_UINT64};
  return (sgn ? s : u)[lg_dtype_itemsize(lane_dt(dt))];
}

/* the vector type of dt's lanes (f32x16; i32x16 for bool), declared in the kernel once */
static vname vtype(rnd *r, lg_dtype dt) {
  vname v;
  need(r, H_VTYPE, lane_dt(dt), 0);
  snprintf(v.s, sizeof v.s, "%sx%d", sfx(lane_dt(dt)), (int)r->lanes);
  return v;
}

static void vec_helper(rnd *r, int32_t kind, lg_dtype a, lg_dtype b) {
  lg_strbuf *h = &r->pre;
  int32_t w = r->lanes, size = lg_dtype_itemsize(a);
  if (kind == H_VINTRIN) {
    lg_strbuf_put(h, "#if defined(__x86_64__) || defined(__i386__)\n#include <immintrin.h>\n#endif\n");
    return;
  }
  if (kind == H_VTYPE) {
    char t[16];
    snprintf(t, sizeof t, "%sx%d", sfx(a), (int)w);
    lg_strbuf_put(h, "typedef %s %s __attribute__((vector_size(%d)));\n", ctype(a), t, w * size);
    lg_strbuf_put(h, "typedef %s %s_u __attribute__((vector_size(%d), aligned(%d), may_alias)); /* unaligned */\n",
        ctype(a), t, w * size, size);
    return;
  }
  vname t = vtype(r, a), k = vtype(r, int_of(a, true)), m = vtype(r, LG_DT_BOOL);
  switch (kind) {
  case H_VALL:
    lg_strbuf_put(h, "static inline %s %s_all(%s x) { return (%s){", t.s, t.s, ctype(a), t.s);
    for (int32_t i = 0; i < w; i++) lg_strbuf_put(h, i ? ", x" : "x");
    lg_strbuf_put(h, "}; }\n");
    break;
  case H_VWHERE: /* a's lanes where the mask is set, b's elsewhere */
    lg_strbuf_put(h, "static inline %s where_%s(%s m, %s a, %s b) {\n  %s k = __builtin_convertvector(m, %s);\n",
        t.s, t.s, m.s, t.s, t.s, k.s, k.s);
    lg_strbuf_put(h, "  return (%s)(((%s)a & k) | ((%s)b & ~k));\n}\n", t.s, k.s, k.s);
    break;
  case H_VLOAD:
  case H_VSTORE: { /* AVX-512 masked accesses: the lanes off the gate touch no memory */
    int32_t bytes = w * size;
    static const char *const ints[9] = {[1] = "epi8", [2] = "epi16", [4] = "epi32", [8] = "epi64"};
    const char *pre = bytes == 64 ? "_mm512" : bytes == 32 ? "_mm256" : "_mm",
               *mpre = w == 16 ? "_mm512" : w == 8 ? "_mm256" : "_mm",
               *suf = lg_dt_is_float(a) ? (size == 4 ? "ps" : "pd") : ints[size],
               *cond = size < 4 ? "defined(__AVX512BW__) && defined(__AVX512VL__)" /* bytes and words */
                                : "defined(__AVX512F__) && defined(__AVX512VL__)";
    char it[16];
    snprintf(it, sizeof it, "__m%d%s", 8 * bytes, lg_dt_is_float(a) ? (size == 4 ? "" : "d") : "i");
    need(r, H_VINTRIN, 0, 0);
    if (kind == H_VLOAD) {
      lg_strbuf_put(h, "/* the lanes of p where g is set, of alt elsewhere; the others touch no memory */\n"
                       "static inline %s load_%s(const %s *p, %s g, %s alt) {\n", t.s, t.s, ctype(a), m.s, t.s);
      lg_strbuf_put(h, "#if %s\n"
                       "  return (%s)%s_mask_loadu_%s((%s)alt, %s_test_epi32_mask((__m%di)g, (__m%di)g), p);\n#else\n",
          cond, t.s, pre, suf, it, mpre, 32 * w, 32 * w);
      lg_strbuf_put(h, "  for (int32_t l = 0; l < %d; l++)\n    if (g[l]) alt[l] = p[l];\n  return alt;\n#endif\n}\n", w);
    } else {
      lg_strbuf_put(h, "/* v's lanes where g is set stored at p; the others touch no memory */\n"
                       "static inline void store_%s(%s *p, %s g, %s v) {\n", t.s, ctype(a), m.s, t.s);
      lg_strbuf_put(h, "#if %s\n"
                       "  %s_mask_storeu_%s(p, %s_test_epi32_mask((__m%di)g, (__m%di)g), (%s)v);\n#else\n",
          cond, pre, suf, mpre, 32 * w, 32 * w, it);
      lg_strbuf_put(h, "  for (int32_t l = 0; l < %d; l++)\n    if (g[l]) p[l] = v[l];\n#endif\n}\n", w);
    }
    break;
  }
  case H_VGATHER: { /* AVX-512 gathers of 4-byte lanes */
    const char *pre = w == 16 ? "_mm512_mask" : "_mm256_mmask", *suf = lg_dt_is_float(a) ? "ps" : "epi32";
    need(r, H_VINTRIN, 0, 0);
    lg_strbuf_put(h, "/* lane l: p[i[l]] where g is set, alt's elsewhere; the others touch no memory */\n"
                     "static inline %s gather_%s(const %s *p, %s i, %s g, %s alt) {\n", t.s, t.s, ctype(a), m.s, m.s, t.s);
    lg_strbuf_put(h, "#if defined(__AVX512F__) && defined(__AVX512VL__)\n"
                     "  return (%s)%s_i32gather_%s((__m%d%s)alt, %s_test_epi32_mask((__m%di)g, (__m%di)g), (__m%di)i, p, %d);\n#else\n",
        t.s, pre, suf, 32 * w, lg_dt_is_float(a) ? "" : "i", w == 16 ? "_mm512" : "_mm256", 32 * w, 32 * w, 32 * w, size);
    lg_strbuf_put(h, "  for (int32_t l = 0; l < %d; l++)\n    if (g[l]) alt[l] = p[i[l]];\n  return alt;\n#endif\n}\n", w);
    break;
  }
  case H_VFMA: { /* fused a * b + c: the x86 instruction where the lanes fill a register */
    int32_t bytes = w * size;
    const char *pre = bytes == 64 ? "_mm512" : bytes == 32 ? "_mm256" : "_mm", *suf = size == 4 ? "ps" : "pd";
    const char *cond = bytes == 64 ? "defined(__AVX512F__)" : "defined(__FMA__)";
    bool native = bytes == 64 || bytes == 32 || bytes == 16;
    if (native) need(r, H_VINTRIN, 0, 0);
    lg_strbuf_put(h, "static inline %s fma_%s(%s a, %s b, %s c) {\n", t.s, t.s, t.s, t.s, t.s);
    if (native)
      lg_strbuf_put(h, "#if %s\n  return (%s)%s_fmadd_%s((__m%d%s)a, (__m%d%s)b, (__m%d%s)c);\n#else\n", cond, t.s, pre, suf,
          8 * bytes, size == 4 ? "" : "d", 8 * bytes, size == 4 ? "" : "d", 8 * bytes, size == 4 ? "" : "d");
    lg_strbuf_put(h, "  for (int32_t l = 0; l < %d; l++) c[l] = fma%s(a[l], b[l], c[l]);\n  return c;\n%s}\n", w,
        size == 4 ? "f" : "", native ? "#endif\n" : "");
    break;
  }
  case H_VLOAD2: { /* lanes l of p[2 * l]: two masked loads of the even elements and a shuffle */
    const char *pre = w == 16 ? "_mm512" : "_mm256", *suf = lg_dt_is_float(a) ? "ps" : "epi32";
    char it[16], idx[160] = "";
    snprintf(it, sizeof it, "__m%d%s", 32 * w, lg_dt_is_float(a) ? "" : "i");
    for (int32_t i = 0; i < w; i++) snprintf(idx + strlen(idx), sizeof idx - strlen(idx), i ? ", %d" : "%d", 2 * (int)i);
    need(r, H_VINTRIN, 0, 0);
    lg_strbuf_put(h, "/* lane l: p[2 * l] where g is set, alt's elsewhere; the odd elements and the lanes off the gate touch no memory */\n"
                     "static inline %s load2_%s(const %s *p, %s g, %s alt) {\n", t.s, t.s, ctype(a), m.s, t.s);
    lg_strbuf_put(h, "#if defined(__AVX512F__) && defined(__AVX512VL__) && defined(__BMI2__)\n"
                     "  uint32_t k = %s_test_epi32_mask((__m%di)g, (__m%di)g), even = _pdep_u32(k, 0x55555555u);\n",
        pre, 32 * w, 32 * w);
    lg_strbuf_put(h, "  %s lo = %s_maskz_loadu_%s(even & 0x%x, p), hi = %s_maskz_loadu_%s(even >> %d, p + %d);\n", it, pre, suf,
        (1u << w) - 1, pre, suf, (int)w, (int)w);
    lg_strbuf_put(h, "  %s r = %s_permutex2var_%s(lo, ((__m%di)(%s){%s}), hi);\n", it, pre, suf, 32 * w, m.s, idx);
    lg_strbuf_put(h, "  return (%s)%s_mask_mov_%s((%s)alt, k, r);\n#else\n", t.s, pre, suf, it);
    lg_strbuf_put(h, "  for (int32_t l = 0; l < %d; l++)\n    if (g[l]) alt[l] = p[2 * l];\n  return alt;\n#endif\n}\n", w);
    break;
  }
  case H_VLOADH: { /* lanes l of p[l / 2]: one masked load of half a vector, each element twice */
    const char *pre = w == 16 ? "_mm512" : "_mm256", *hpre = w == 16 ? "_mm256" : "_mm",
               *suf = lg_dt_is_float(a) ? "ps" : "epi32", *cast = lg_dt_is_float(a) ? "ps" : "si";
    char it[16], idx[160] = "";
    snprintf(it, sizeof it, "__m%d%s", 32 * w, lg_dt_is_float(a) ? "" : "i");
    for (int32_t i = 0; i < w; i++) snprintf(idx + strlen(idx), sizeof idx - strlen(idx), i ? ", %d" : "%d", (int)i / 2);
    need(r, H_VINTRIN, 0, 0);
    lg_strbuf_put(h, "/* lane l: p[l / 2] where g is set, alt's elsewhere; elements no lane on the gate needs touch no memory */\n"
                     "static inline %s loadh_%s(const %s *p, %s g, %s alt) {\n", t.s, t.s, ctype(a), m.s, t.s);
    lg_strbuf_put(h, "#if defined(__AVX512F__) && defined(__AVX512VL__) && defined(__BMI2__)\n"
                     "  uint32_t k = %s_test_epi32_mask((__m%di)g, (__m%di)g), pairs = _pext_u32(k | k >> 1, 0x55555555u);\n",
        pre, 32 * w, 32 * w);
    lg_strbuf_put(h, "  %s v = %s_cast%s%d_%s%d(%s_maskz_loadu_%s(pairs, p));\n", it, pre, cast, 16 * w, cast, 32 * w, hpre, suf);
    lg_strbuf_put(h, "  %s r = %s_permutexvar_%s(((__m%di)(%s){%s}), v);\n", it, pre, suf, 32 * w, m.s, idx);
    lg_strbuf_put(h, "  return (%s)%s_mask_mov_%s((%s)alt, k, r);\n#else\n", t.s, pre, suf, it);
    lg_strbuf_put(h, "  for (int32_t l = 0; l < %d; l++)\n    if (g[l]) alt[l] = p[l / 2];\n  return alt;\n#endif\n}\n", w);
    break;
  }
  case H_VLANES: { /* a REDUCE's op (b) over the lanes, in lane order; through memory, so that the
                     accumulator itself stays in a register (subscripting it would not) */
    static const char *const names[LG_OP__COUNT] = {[LG_OP_ADD] = "add", [LG_OP_MUL] = "mul", [LG_OP_MAX] = "max"};
    int32_t op = (int32_t)b;
    expr x = build(r, P_PRIMARY, "s"), y = build(r, is_mask(a) ? P_EQ : P_PRIMARY, is_mask(a) ? "t[l] != 0" : "t[l]");
    expr v = op_expr(r, op, a, &x, &y, NULL, (facts){0});
    lg_strbuf_put(h, "static inline %s %s_lanes_%s(%s v) {\n  %s t[%d];\n  __builtin_memcpy(t, &v, sizeof t);\n",
        ctype(a), names[op], t.s, t.s, ctype(lane_dt(a)), (int)w);
    lg_strbuf_put(h, "  %s s = t[0]%s;\n  for (int32_t l = 1; l < %d; l++) s = %s;\n  return s;\n}\n", ctype(a),
        is_mask(a) ? " != 0" : "", (int)w, v.s ? v.s : "");
    free(x.s), free(y.s), free(v.s);
    break;
  }
  default: /* H_VMAX */
    lg_strbuf_put(h, "static inline %s max_%s(%s a, %s b) {%s\n", t.s, t.s, t.s, t.s,
        lg_dt_is_float(a) ? " /* NaN wins; -0.0 < 0.0 */" : "");
    if (lg_dt_is_float(a))
      lg_strbuf_put(h, "  %s k = (a > b) | (a != a) | ((a == b) & ((%s)a >= 0));\n", k.s, k.s);
    else
      lg_strbuf_put(h, "  %s k = a > b;\n", k.s);
    lg_strbuf_put(h, "  return (%s)(((%s)a & k) | ((%s)b & ~k));\n}\n", t.s, k.s, k.s);
  }
}

/* u as a vector: itself, or a scalar broadcast (a bool as a mask) */
static expr vop(rnd *r, const lg_uop *u) {
  const expr *e = ex(r, u);
  if (is_vec(r, u)) return build(r, e->prec, "$", e, P_ANY);
  char tm[48];
  need(r, H_VALL, lane_dt(u->dtype), 0);
  snprintf(tm, sizeof tm, is_mask(u->dtype) ? "%s_all(-(int32_t)$)" : "%s_all($)", vtype(r, u->dtype).s);
  return build(r, P_PRIMARY, tm, e, is_mask(u->dtype) ? P_UNARY : P_ANY);
}

/* u in lane l (a C expression): x[l], a mask's lane as 0 or 1, a scalar as itself */
static expr lane_of(rnd *r, const lg_uop *u, const char *l) {
  const expr *e = ex(r, u);
  char tm[32];
  if (!is_vec(r, u)) return build(r, e->prec, "$", e, P_ANY);
  snprintf(tm, sizeof tm, is_mask(u->dtype) ? "$[%s] != 0" : "$[%s]", l);
  return build(r, is_mask(u->dtype) ? P_EQ : P_PRIMARY, tm, e, P_PRIMARY);
}

/* whether a vector of dt's lanes has masked loads and stores (helpers H_VLOAD, H_VSTORE) */
static bool maskable(const rnd *r, lg_dtype dt) {
  int32_t bytes = r->lanes * lg_dtype_itemsize(dt);
  return !is_mask(dt) && r->lanes >= 4 && r->lanes <= 16 && bytes >= 16 && bytes <= 64;
}

/* an access of whole vectors: index ADD(base, lane) (or the lane: *base NULL), under a gate for
 * all lanes or, where masked loads and stores exist, a gate per lane */
static bool contiguous(const rnd *r, const lg_uop *idx, const lg_uop **base) {
  const lg_uop *i = idx->src[1];
  lg_dtype dt = lg_dtype_base(idx->src[0]->dtype);
  *base = NULL;
  if (is_mask(dt) || (idx->nsrc == 3 && is_vec(r, idx->src[2]) && !maskable(r, dt))) return false;
  if (i == r->lane) return true;
  if (i->op != LG_OP_ADD || i->src[1] != r->lane || is_vec(r, i->src[0])) return false;
  *base = i->src[0];
  return true;
}

/* whether loads of dt's lanes can gather (helper H_VGATHER) */
static bool gatherable(const rnd *r, lg_dtype dt) {
  return !is_mask(dt) && lg_dtype_itemsize(dt) == 4 && (r->lanes == 8 || r->lanes == 16);
}

/* a load of every other element, index ADD(base, MUL(lane, 2)) (op LG_OP_MUL: helper H_VLOAD2),
 * or of each element twice, index ADD(base, IDIV(lane, 2)) (LG_OP_IDIV: H_VLOADH), as opt.apply
 * writes `base + 2 * lane` and `base + lane / 2`; of 4-byte lanes that gather */
static bool lanes_by_2(const rnd *r, const lg_uop *idx, int32_t op, const lg_uop **base) {
  const lg_uop *i = idx->src[1], *m;
  *base = NULL;
  if (!gatherable(r, lg_dtype_base(idx->src[0]->dtype)) || i->op != LG_OP_ADD || is_vec(r, i->src[0])) return false;
  m = i->src[1];
  if (m->op != op || m->src[0] != r->lane || m->src[1]->op != LG_OP_CONST || m->src[1]->arg.i != 2) return false;
  *base = i->src[0];
  return true;
}
static bool strided2(const rnd *r, const lg_uop *idx, const lg_uop **base) { return lanes_by_2(r, idx, LG_OP_MUL, base); }
static bool halves(const rnd *r, const lg_uop *idx, const lg_uop **base) { return lanes_by_2(r, idx, LG_OP_IDIV, base); }

/* whether vector node u is computed lane by lane */
static bool lane_loop(const rnd *r, const lg_uop *u) {
  const lg_uop *base;
  if (u->op == LG_OP_LOAD || u->op == LG_OP_STORE) return !contiguous(r, u->src[0], &base);
  lg_dtype dt = u->dtype, from = u->src[0]->dtype;
  switch (u->op) {
  case LG_OP_CAST: return lg_dt_is_int(dt) && lg_dt_is_float(from);
  case LG_OP_BITCAST: return is_mask(dt) || is_mask(from);
  case LG_OP_SQRT:
  case LG_OP_EXP2:
  case LG_OP_LOG2:
  case LG_OP_SIN:
  case LG_OP_TRUNC:
  case LG_OP_POW: return true;
  case LG_OP_IDIV:
  case LG_OP_MOD: return !facts_of(u).div_plain || narrow(dt);
  case LG_OP_SHL:
  case LG_OP_SHR: return !facts_of(u).shift_plain;
  default: return false;
  }
}

/* an ALU op on vectors of dtype dt (the operands' for comparisons, the values' for WHERE) */
static expr valu(rnd *r, int32_t op, lg_dtype dt, const expr *a, const expr *b, const expr *c, facts f) {
  char tm[160];
  bool mask = is_mask(dt), wrap = lg_dtype_kind(dt) == 'i' && !f.nowrap; /* signed lanes that may overflow */
  vname t = vtype(r, dt), ut = wrap ? vtype(r, int_of(dt, false)) : t;
  const char *sym = NULL;
  int32_t p = P_ADD;
  switch (op) {
  case LG_OP_CMPLT:
    if (mask) return build(r, P_BAND, "~$ & $", a, P_UNARY, b, P_BAND); /* masks: -1 is true */
    sym = "<";
    break;
  case LG_OP_CMPNE: sym = "!="; break;
  case LG_OP_CMPEQ: sym = "=="; break;
  case LG_OP_WHERE:
    need(r, H_VWHERE, lane_dt(dt), 0);
    snprintf(tm, sizeof tm, "where_%s($, $, $)", t.s);
    return build(r, P_PRIMARY, tm, a, P_ANY, b, P_ANY, c, P_ANY);
  case LG_OP_MAX:
    if (mask) return build(r, P_BOR, "$ | $", a, P_BOR, b, P_BOR);
    need(r, H_VMAX, dt, 0);
    snprintf(tm, sizeof tm, "max_%s($, $)", t.s);
    return build(r, P_PRIMARY, tm, a, P_ANY, b, P_ANY);
  case LG_OP_NEG:
    if (!wrap) return build(r, P_UNARY, "-$", a, P_UNARY);
    snprintf(tm, sizeof tm, "(%s)-(%s)$", t.s, ut.s);
    return build(r, P_UNARY, tm, a, P_UNARY);
  case LG_OP_RECIPROCAL:
    need(r, H_VALL, dt, 0);
    snprintf(tm, sizeof tm, "%s_all(1) / $", t.s);
    return build(r, P_MUL, tm, a, P_MUL + 1);
  case LG_OP_MULACC:
    if (!wrap) return build(r, P_ADD, "$ * $ + $", a, P_MUL, b, P_MUL + 1, c, P_ADD + 1);
    snprintf(tm, sizeof tm, "(%s)((%s)$ * (%s)$ + (%s)$)", t.s, ut.s, ut.s, ut.s);
    return build(r, P_UNARY, tm, a, P_UNARY, b, P_UNARY, c, P_UNARY);
  case LG_OP_SHL:
    if (!wrap) return build(r, P_SHIFT, "$ << $", a, P_UNARY, b, P_UNARY);
    snprintf(tm, sizeof tm, "(%s)((%s)$ << (%s)$)", t.s, ut.s, ut.s);
    return build(r, P_UNARY, tm, a, P_UNARY, b, P_UNARY);
  case LG_OP_ADD: sym = mask ? "|" : "+"; break;
  case LG_OP_SUB: sym = "-"; break;
  case LG_OP_MUL: sym = mask ? "&" : "*", p = P_MUL; break;
  case LG_OP_FDIV:
  case LG_OP_IDIV: sym = "/", p = P_MUL; break;
  case LG_OP_MOD: sym = "%", p = P_MUL; break;
  case LG_OP_AND: sym = "&", p = P_BAND; break;
  case LG_OP_OR: sym = "|", p = P_BOR; break;
  case LG_OP_XOR: sym = "^", p = P_BXOR; break;
  default: sym = ">>", p = P_SHIFT; break; /* SHR: arithmetic for signed lanes, as core/alu.c folds */
  }
  if (lg_op_has(op, LG_OPF_CMP)) {
    if (lg_dtype_itemsize(lane_dt(dt)) == 4) {
      snprintf(tm, sizeof tm, "$ %s $", sym);
      return build(r, P_EQ, tm, a, P_SHIFT, b, P_SHIFT);
    }
    snprintf(tm, sizeof tm, "__builtin_convertvector($ %s $, %s)", sym, vtype(r, LG_DT_BOOL).s);
    return build(r, P_PRIMARY, tm, a, P_SHIFT, b, P_SHIFT);
  }
  if (wrap && (op == LG_OP_ADD || op == LG_OP_SUB || op == LG_OP_MUL)) {
    snprintf(tm, sizeof tm, "(%s)((%s)$ %s (%s)$)", t.s, ut.s, sym, ut.s);
    return build(r, P_UNARY, tm, a, P_UNARY, b, P_UNARY);
  }
  snprintf(tm, sizeof tm, "$ %s $", sym);
  return build(r, p, tm, a, p, b, p + 1);
}

/* a vector CAST or BITCAST that is not computed lane by lane */
static expr vcast(rnd *r, int32_t op, lg_dtype to, lg_dtype from, const expr *a) {
  char tm[96];
  vname t = vtype(r, to);
  if (to == from) return build(r, a->prec, "$", a, P_ANY);
  if (op == LG_OP_BITCAST) {
    snprintf(tm, sizeof tm, "(%s)$", t.s);
    return build(r, P_UNARY, tm, a, P_UNARY);
  }
  if (is_mask(to)) { /* x != 0 */
    char z[48];
    need(r, H_VALL, from, 0);
    snprintf(z, sizeof z, "%s_all(0)", vtype(r, from).s);
    expr zero = build(r, P_PRIMARY, z), out = valu(r, LG_OP_CMPNE, from, a, &zero, NULL, (facts){0});
    free(zero.s);
    return out;
  }
  snprintf(tm, sizeof tm, is_mask(from) ? "__builtin_convertvector(-$, %s)" : "__builtin_convertvector($, %s)", t.s);
  return build(r, P_PRIMARY, tm, a, is_mask(from) ? P_UNARY : P_ANY);
}

/* `T name;` then a loop over the lanes that sets name[l] = v (a mask's lane to 0 or -1) */
static void lane_lines(rnd *r, int32_t depth, lg_dtype dt, const char *name, const char *guard, expr v) {
  line(r, depth, "%s %s;", vtype(r, dt).s, name);
  line(r, depth, "for (int32_t l = 0; l < %d; l++) %s%s[l] = %s%s%s;", (int)r->lanes, guard, name,
       is_mask(dt) ? "-(" : "", v.s ? v.s : "", is_mask(dt) ? ")" : "");
  free(v.s);
}

/* a scalar access of lane l: data1[i[l]], gated by g[l] */
static expr lane_access(rnd *r, const lg_uop *idx, expr *gate) {
  char acc[64];
  access_tmpl(idx, acc, sizeof acc);
  expr i = lane_of(r, idx->src[1], "l"), out = build(r, P_PRIMARY, acc, &i, P_ANY);
  *gate = idx->nsrc == 3 ? lane_of(r, idx->src[2], "l") : (expr){0};
  free(i.s);
  return out;
}

static expr zero_vec(rnd *r, lg_dtype dt) {
  char z[48];
  need(r, H_VALL, dt, 0);
  snprintf(z, sizeof z, "%s_all(0)", vtype(r, dt).s);
  return build(r, P_PRIMARY, z);
}

static void vload(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u, *idx = u->src[0];
  const lg_uop *base;
  char name[24], tm[128];
  snprintf(name, sizeof name, "val%d", r->nval);
  expr alt = u->nsrc > 1 ? vop(r, u->src[1]) : (expr){0};
  if (contiguous(r, idx, &base)) {
    vname t = vtype(r, u->dtype);
    snprintf(tm, sizeof tm, base ? "*(const %s_u *)(data%lld + $)" : "*(const %s_u *)data%lld", t.s,
             (long long)idx->src[0]->arg.i);
    expr v = base ? build(r, P_UNARY, tm, ex(r, base), P_ANY) : build(r, P_UNARY, tm);
    if (idx->nsrc == 3 && is_vec(r, idx->src[2])) { /* a gate per lane: a masked load */
      if (!alt.s) alt = zero_vec(r, u->dtype);
      need(r, H_VLOAD, u->dtype, 0);
      snprintf(tm, sizeof tm, base ? "load_%s(data%lld + $, $, $)" : "load_%s(data%lld, $, $)", t.s,
               (long long)idx->src[0]->arg.i);
      expr g = base ? build(r, P_PRIMARY, tm, ex(r, base), P_ADD, ex(r, idx->src[2]), P_ANY, &alt, P_ANY)
                    : build(r, P_PRIMARY, tm, ex(r, idx->src[2]), P_ANY, &alt, P_ANY);
      free(v.s), v = g;
    } else if (idx->nsrc == 3) { /* a gate for all lanes */
      if (!alt.s) alt = zero_vec(r, u->dtype);
      snprintf(tm, sizeof tm, "$ ? (%s)$ : $", t.s); /* the aligned type on both sides */
      expr g = build(r, P_COND, tm, ex(r, idx->src[2]), P_BOR, &v, P_UNARY, &alt, P_BOR);
      free(v.s), v = g;
    }
    line(r, in->depth, "%s %s = %s;", t.s, name, v.s ? v.s : "");
    free(v.s);
  } else if (strided2(r, idx, &base) || halves(r, idx, &base)) { /* two loads or one, and a shuffle */
    vname t = vtype(r, u->dtype);
    char all[48];
    bool two = idx->src[1]->src[1]->op == LG_OP_MUL; /* every other element, else each twice */
    need(r, two ? H_VLOAD2 : H_VLOADH, u->dtype, 0);
    need(r, H_VALL, LG_DT_INT32, 0);
    snprintf(all, sizeof all, "%s_all(-1)", vtype(r, LG_DT_BOOL).s);
    expr g = idx->nsrc == 3 ? vop(r, idx->src[2]) : build(r, P_PRIMARY, all);
    if (!alt.s) alt = zero_vec(r, u->dtype);
    snprintf(tm, sizeof tm, "load%s_%s(data%lld + $, $, $)", two ? "2" : "h", t.s, (long long)idx->src[0]->arg.i);
    expr v = build(r, P_PRIMARY, tm, ex(r, base), P_ADD, &g, P_ANY, &alt, P_ANY);
    line(r, in->depth, "%s %s = %s;", t.s, name, v.s ? v.s : "");
    free(v.s), free(g.s);
  } else if (gatherable(r, u->dtype) && is_vec(r, idx->src[1])) { /* a hardware gather */
    vname t = vtype(r, u->dtype);
    char all[48];
    need(r, H_VGATHER, u->dtype, 0);
    need(r, H_VALL, LG_DT_INT32, 0);
    snprintf(all, sizeof all, "%s_all(-1)", vtype(r, LG_DT_BOOL).s);
    expr i = vop(r, idx->src[1]), g = idx->nsrc == 3 ? vop(r, idx->src[2]) : build(r, P_PRIMARY, all);
    if (!alt.s) alt = zero_vec(r, u->dtype);
    snprintf(tm, sizeof tm, "gather_%s(data%lld, $, $, $)", t.s, (long long)idx->src[0]->arg.i);
    expr v = build(r, P_PRIMARY, tm, &i, P_ANY, &g, P_ANY, &alt, P_ANY);
    line(r, in->depth, "%s %s = %s;", t.s, name, v.s ? v.s : "");
    free(v.s), free(i.s), free(g.s);
  } else {
    expr g, a = lane_access(r, idx, &g), v;
    if (g.s) {
      expr al = u->nsrc > 1 ? lane_of(r, u->src[1], "l") : literal(r, u->dtype, 0, 0.0);
      v = build(r, P_COND, "$ ? $ : $", &g, P_BOR, &a, P_BOR, &al, P_BOR);
      free(al.s), free(a.s), free(g.s);
    } else {
      v = a;
    }
    lane_lines(r, in->depth, u->dtype, name, "", v);
  }
  free(alt.s);
  set_name(r, u, "val%lld", r->nval++);
}

static void vstore(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u, *idx = u->src[0];
  const lg_uop *base;
  const char *g = idx->nsrc == 3 ? ex(r, idx->src[2])->s : NULL;
  char tm[160];
  if (contiguous(r, idx, &base) && g && is_vec(r, idx->src[2])) { /* a gate per lane: a masked store */
    expr v = vop(r, u->src[1]);
    need(r, H_VSTORE, u->src[1]->dtype, 0);
    snprintf(tm, sizeof tm, base ? "store_%s(data%lld + $, $, $);" : "store_%s(data%lld, $, $);",
             vtype(r, u->src[1]->dtype).s, (long long)idx->src[0]->arg.i);
    expr s = base ? build(r, P_ANY, tm, ex(r, base), P_ADD, ex(r, idx->src[2]), P_ANY, &v, P_ANY)
                  : build(r, P_ANY, tm, ex(r, idx->src[2]), P_ANY, &v, P_ANY);
    line(r, in->depth, "%s", s.s ? s.s : "");
    free(s.s), free(v.s);
    return;
  }
  if (contiguous(r, idx, &base)) {
    expr v = vop(r, u->src[1]);
    snprintf(tm, sizeof tm, "%s%s%s*(%s_u *)(data%lld%s) = $;", g ? "if (" : "", g ? g : "", g ? ") " : "",
             vtype(r, u->src[1]->dtype).s, (long long)idx->src[0]->arg.i, base ? " + $" : "");
    expr s = base ? build(r, P_ANY, tm, ex(r, base), P_ANY, &v, P_ANY) : build(r, P_ANY, tm, &v, P_ANY);
    line(r, in->depth, "%s", s.s ? s.s : "");
    free(s.s), free(v.s);
    return;
  }
  expr gate, a = lane_access(r, idx, &gate), v = lane_of(r, u->src[1], "l");
  expr s = gate.s ? build(r, P_ANY, "if ($) $ = $;", &gate, P_ANY, &a, P_ANY, &v, P_ANY)
                  : build(r, P_ANY, "$ = $;", &a, P_ANY, &v, P_ANY);
  line(r, in->depth, "for (int32_t l = 0; l < %d; l++) %s", (int)r->lanes, s.s ? s.s : "");
  free(s.s), free(v.s), free(a.s), free(gate.s);
}

/* ALU, CAST, BITCAST on vectors: inline when used once, else a variable */
static void vvalue(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u;
  char name[24];
  snprintf(name, sizeof name, "alu%d", r->nalu);
  expr x[3] = {{0}};
  if (lane_loop(r, u)) {
    for (int32_t i = 0; i < u->nsrc; i++) x[i] = lane_of(r, u->src[i], "l");
    expr v = u->op == LG_OP_CAST      ? cast_expr(r, u->dtype, u->src[0]->dtype, &x[0])
             : u->op == LG_OP_BITCAST ? bitcast_expr(r, u->dtype, u->src[0]->dtype, &x[0])
                                      : op_expr(r, u->op, u->dtype, &x[0], &x[1], &x[2], facts_of(u));
    lane_lines(r, in->depth, u->dtype, name, "", v);
  } else {
    for (int32_t i = 0; i < u->nsrc; i++) x[i] = vop(r, u->src[i]);
    lg_dtype dt = u->op == LG_OP_WHERE || lg_op_has(u->op, LG_OPF_CMP) ? u->src[u->nsrc - 1]->dtype : u->dtype;
    expr v = u->op == LG_OP_CAST || u->op == LG_OP_BITCAST ? vcast(r, u->op, u->dtype, u->src[0]->dtype, &x[0])
                                                           : valu(r, u->op, dt, &x[0], &x[1], &x[2], facts_of(u));
    if (r->refs[slot_of(r, u)] <= 1 && v.s && strlen(v.s) <= INLINE_MAX) { /* unused: ADD(base, lane) */
      for (int32_t i = 0; i < u->nsrc; i++) free(x[i].s);
      *ex(r, u) = v;
      return;
    }
    line(r, in->depth, "%s %s = %s;", vtype(r, u->dtype).s, name, v.s ? v.s : "");
    free(v.s);
  }
  for (int32_t i = 0; i < u->nsrc; i++) free(x[i].s);
  set_name(r, u, "alu%lld", r->nalu++);
}

static void vreduce_init(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u;
  lg_dtype dt = u->dtype;
  int32_t op = lg_lin_reduce_op(u);
  int64_t lo = 0, hi;
  if (op == LG_OP_MAX && !lg_dt_is_float(dt)) lg_dt_int_range(dt, &lo, &hi);
  expr id = op == LG_OP_MAX ? literal(r, dt, lo, -INFINITY) : literal(r, dt, op == LG_OP_MUL, op == LG_OP_MUL);
  char tm[64];
  need(r, H_VALL, lane_dt(dt), 0);
  snprintf(tm, sizeof tm, is_mask(dt) ? "%s_all(-(int32_t)$)" : "%s_all($)", vtype(r, dt).s);
  expr v = build(r, P_PRIMARY, tm, &id, is_mask(dt) ? P_UNARY : P_ANY);
  line(r, in->depth, "%s acc%d = %s;", vtype(r, dt).s, r->nacc, v.s ? v.s : "");
  free(id.s), free(v.s);
  set_name(r, u, "acc%lld", r->nacc++);
}

static void vreduce_update(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u;
  const lg_uop *terms[LG_LIN_FMA_TERMS];
  bool fused[LG_LIN_FMA_TERMS];
  int32_t n = lg_lin_fma_terms(u, users_of, r, terms, fused);
  if (n > 0) { /* as reduce_update, on vectors */
    expr *acc = ex(r, u), e = build(r, acc->prec, "$", acc, P_ANY);
    char tm[48];
    need(r, H_VFMA, u->dtype, 0);
    snprintf(tm, sizeof tm, "fma_%s($, $, $)", vtype(r, u->dtype).s);
    for (int32_t i = 0; i < n; i++) {
      expr next;
      if (fused[i]) {
        expr a = vop(r, terms[i]->src[0]), b = vop(r, terms[i]->src[1]);
        next = build(r, P_PRIMARY, tm, &a, P_ANY, &b, P_ANY, &e, P_ANY);
        free(a.s), free(b.s);
      } else {
        expr t = vop(r, terms[i]);
        next = build(r, P_ADD, "$ + $", &e, P_ADD, &t, P_ADD + 1);
        free(t.s);
      }
      free(e.s), e = next;
    }
    line(r, in->depth, "%s = %s;", acc->s ? acc->s : "", e.s ? e.s : "");
    free(e.s);
    return;
  }
  expr *acc = ex(r, u), x = vop(r, u->src[0]);
  expr v = valu(r, lg_lin_reduce_op(u), u->dtype, acc, &x, NULL, (facts){0});
  line(r, in->depth, "%s = %s;", acc->s ? acc->s : "", v.s ? v.s : "");
  free(v.s), free(x.s);
}

/* a REDUCE over the lanes, once its loops are done: its accumulator's lanes added up */
static void vreduce_finish(rnd *r, const lg_uop *u, int32_t depth) {
  static const char *const names[LG_OP__COUNT] = {[LG_OP_ADD] = "add", [LG_OP_MUL] = "mul", [LG_OP_MAX] = "max"};
  int32_t op = lg_lin_reduce_op(u);
  expr *acc = ex(r, u);
  need(r, H_VLANES, u->dtype, (lg_dtype)op);
  line(r, depth, "%s red%d = %s_lanes_%s(%s);", ctype(u->dtype), r->nacc, names[op], vtype(r, u->dtype).s,
       acc->s ? acc->s : "");
  free(acc->s);
  set_name(r, u, "red%lld", r->nacc++);
}

/* the lanes' RANGE: their numbers */
static void lanes_value(rnd *r, const lg_lin_inst *in) {
  lg_strbuf b = {0};
  for (int32_t i = 0; i < r->lanes; i++) lg_strbuf_put(&b, i ? ", %d" : "%d", (int)i);
  line(r, in->depth, "const %s lane = {%s};", vtype(r, in->u->dtype).s, b.p ? b.p : "");
  r->oom |= b.oom;
  free(b.p);
  *ex(r, in->u) = build(r, P_PRIMARY, "lane");
}

static void loop_open(rnd *r, const lg_lin_inst *in, bool split) {
  lg_uop *u = in->u;
  long long axis = (long long)u->arg.ints[0];
  const char *t = ctype(u->dtype);
  char name[32], tm[256];
  snprintf(name, sizeof name, axis >= 0 ? "ridx%lld" : "ridxn%lld", axis >= 0 ? axis : -axis);
  if (split) {
    const expr *n = ex(r, u->src[0]);
    snprintf(tm, sizeof tm, "const %s start = (int64_t)$ * core_id / ncores, end = (int64_t)$ * (core_id + 1) / ncores;", t);
    expr bounds = build(r, P_ANY, tm, n, P_UNARY, n, P_UNARY);
    line(r, in->depth, "/* %s is split over the cores: this one runs [start, end) */", name);
    line(r, in->depth, "%s", bounds.s ? bounds.s : "");
    line(r, in->depth, "for (%s %s = start; %s < end; %s++) {", t, name, name, name);
    free(bounds.s);
  } else {
    snprintf(tm, sizeof tm, "for (%s %s = 0; %s < $; %s++) {", t, name, name, name);
    expr e = build(r, P_ANY, tm, ex(r, u->src[0]), P_SHIFT);
    line(r, in->depth, "%s", e.s ? e.s : "");
    free(e.s);
  }
  *ex(r, u) = build(r, P_PRIMARY, name);
}

static void walk(rnd *r) {
  if (r->split_open < 0) line(r, 0, "if (core_id != 0) return; /* not split over the cores: core 0 does it all */");
  for (int64_t k = 0; k < r->lin.n; k++) {
    const lg_lin_inst *in = &r->lin.inst[k];
    lg_uop *u = in->u;
    switch (in->kind) {
    case LG_LIN_OPEN: loop_open(r, in, k == r->split_open); break;
    case LG_LIN_CLOSE:
      line(r, in->depth, "}");
      for (int64_t i = 0; i < r->nfinishing; i++)
        if (r->finish_at[slot_of(r, r->finishing[i])] == u) vreduce_finish(r, r->finishing[i], in->depth);
      break;
    case LG_LIN_INIT: (r->vacc[slot_of(r, u)] ? vreduce_init : reduce_init)(r, in); break;
    case LG_LIN_UPDATE:
      if (!r->vacc[slot_of(r, u)]) {
        reduce_update(r, in);
        break;
      }
      vreduce_update(r, in);
      if (!is_vec(r, u) && !r->finish_at[slot_of(r, u)]) vreduce_finish(r, u, in->depth);
      break;
    default:
      switch (u->op) {
      case LG_OP_CONST: *ex(r, u) = literal(r, u->dtype, u->arg.i, u->arg.f); break;
      case LG_OP_RANGE: lanes_value(r, in); break;
      case LG_OP_LOAD: (is_vec(r, u) ? vload : load)(r, in); break;
      case LG_OP_STORE: (is_vec(r, u) ? vstore : store)(r, in); break;
      case LG_OP_DEFINE_GLOBAL: /* named before the walk */
      case LG_OP_DEFINE_VAR:
      case LG_OP_INDEX: /* written by its LOADs and STOREs */
      case LG_OP_END:
      case LG_OP_GROUP:
      case LG_OP_SINK: break;
      default: (is_vec(r, u) ? vvalue : value)(r, in); break;
      }
    }
  }
}

/* ---- checks, names, uses ------------------------------------------------------------------------- */

static lg_status check_node(rnd *r, const lg_uop *u) {
  char msg[256];
  return lg_lin_check_node(u, "the C renderer", msg, sizeof msg) ? fail(r, u, "%s", msg) : LG_OK;
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

static bool has_slot(int32_t kind) { return kind != LG_LIN_CLOSE && kind != LG_LIN_UPDATE; }

/* the vector lanes: which nodes are vectors, which REDUCEs keep a vector accumulator and when
 * they add its lanes up. Nodes come in loop order, where a REDUCE's INIT may precede its value's
 * node: repeated until nothing changes. */
static lg_status lanes_pass(rnd *r) {
  for (int64_t k = 0; k < r->lin.n; k++) {
    lg_uop *u = r->lin.inst[k].u;
    if (r->lin.inst[k].kind != LG_LIN_NODE || u->op != LG_OP_RANGE) continue;
    if (r->lane) return fail(r, u, "a kernel has one RANGE of vector lanes; this is a second one");
    int64_t n = u->src[0]->op == LG_OP_CONST ? u->src[0]->arg.i : 0;
    if (n < 2 || n > 64 || (n & (n - 1)))
      return fail(r, u, "vector lanes need a constant size, a power of 2 from 2 to 64");
    r->lane = u, r->lanes = (int32_t)n;
  }
  r->vec = calloc((size_t)r->nslots, sizeof *r->vec);
  r->vacc = calloc((size_t)r->nslots, sizeof *r->vacc);
  r->finish_at = calloc((size_t)r->nslots, sizeof *r->finish_at);
  r->finishing = malloc((size_t)r->nslots * sizeof *r->finishing);
  if (!r->vec || !r->vacc || !r->finish_at || !r->finishing) return lg_ctx_fail(r->ctx, LG_ERR_NOMEM, "render C: out of memory");
  if (!r->lane) return LG_OK;
  for (bool changed = true; changed;) {
    changed = false;
    for (int64_t k = 0; k < r->lin.n; k++) {
      lg_uop *u = r->lin.inst[k].u;
      if (!has_slot(r->lin.inst[k].kind)) continue;
      int64_t i = slot_of(r, u);
      bool v = u == r->lane, acc = false;
      if (u->op == LG_OP_REDUCE) {
        bool over = false;
        const lg_uop *outer = NULL;
        for (int32_t j = 1; j < u->nsrc; j++) {
          over |= u->src[j] == r->lane;
          if (u->src[j] != r->lane && (!outer || u->src[j]->arg.ints[0] < outer->arg.ints[0])) outer = u->src[j];
        }
        acc = over || is_vec(r, u->src[0]);
        v = acc && !over;
        if (over && outer && !r->finish_at[i]) r->finish_at[i] = outer, r->finishing[r->nfinishing++] = u;
      } else if (u->op != LG_OP_CONST && u->op != LG_OP_DEFINE_GLOBAL && u->op != LG_OP_DEFINE_VAR) {
        for (int32_t j = 0; j < u->nsrc; j++) v |= is_vec(r, u->src[j]);
      }
      changed |= v != r->vec[i] || acc != r->vacc[i];
      r->vec[i] = v, r->vacc[i] = acc;
    }
  }
  for (int64_t k = 0; k < r->lin.n; k++) {
    lg_uop *u = r->lin.inst[k].u;
    lg_dtype dt = u->op == LG_OP_STORE ? u->src[1]->dtype : u->dtype;
    if (has_slot(r->lin.inst[k].kind) && (is_vec(r, u) || r->vacc[slot_of(r, u)]) &&
        (sid(dt) == LG_DT_FLOAT16 || is_bf16(dt)))
      return fail(r, u, "vector lanes of float16 and bfloat16 are not supported");
  }
  return LG_OK;
}

/* slots, checks, parameters (sorted, named) and how often each node's text is used */
static lg_status prepass(rnd *r) {
  for (int64_t k = 0; k < r->lin.n; k++)
    if (has_slot(r->lin.inst[k].kind) && !lg_ptrmap_put(&r->slot, r->lin.inst[k].u, (void *)(intptr_t)++r->nslots))
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
    if (!has_slot(r->lin.inst[k].kind)) continue;
    for (int32_t i = 0; i < u->nsrc; i++) r->users[slot_of(r, u->src[i])]++;
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
      return fail(r, r->globals[i], "another DEFINE_GLOBAL has the same slot with another dtype");
    set_name(r, r->globals[i], "data%lld", r->globals[i]->arg.i);
  }
  for (int64_t i = 0; i < r->nvars; i++) {
    const char *s = r->vars[i]->arg.s;
    if (i > 0 && strcmp(s, r->vars[i - 1]->arg.s) == 0)
      return fail(r, r->vars[i], "another DEFINE_VAR has the same name (its place in ints is ambiguous)");
    if (is_ident(s) && strlen(s) < 32) {
      char name[40];
      snprintf(name, sizeof name, "var_%s", s);
      *ex(r, r->vars[i]) = build(r, P_PRIMARY, name);
    } else {
      set_name(r, r->vars[i], "var%lld", i);
    }
  }
  lg_status st = lanes_pass(r);
  if (st) return st;
  for (int64_t k = r->lin.n - 1; k >= 0; k--) {
    lg_uop *u = r->lin.inst[k].u;
    if (!has_slot(r->lin.inst[k].kind)) continue;
    const lg_uop *base;
    if (u->op == LG_OP_INDEX && is_vec(r, u) && (contiguous(r, u, &base) || strided2(r, u, &base) || halves(r, u, &base))) {
      /* the base, not ADD(base, lane) */
      int64_t w = r->refs[slot_of(r, u)];
      if (base) r->refs[slot_of(r, base)] += w;
      if (u->nsrc == 3) r->refs[slot_of(r, u->src[2])] += w;
      continue;
    }
    if (is_vec(r, u) && (u->op == LG_OP_INDEX || (u->op != LG_OP_LOAD && u->op != LG_OP_STORE && lane_loop(r, u))))
      for (int32_t i = 0; i < u->nsrc; i++) /* used in a loop over the lanes: a variable, computed once */
        if (is_vec(r, u->src[i])) r->refs[slot_of(r, u->src[i])] += 2;
    bool text = lg_op_has(u->op, LG_OPF_ALU) || u->op == LG_OP_CAST || u->op == LG_OP_BITCAST || u->op == LG_OP_LOAD ||
                u->op == LG_OP_STORE || u->op == LG_OP_INDEX;
    int32_t uses = u->op == LG_OP_RANGE || u->op == LG_OP_REDUCE ? 1 : text ? u->nsrc : 0;
    int64_t w = u->op == LG_OP_INDEX ? r->refs[slot_of(r, u)] : 1; /* an INDEX is written at each use */
    for (int32_t i = 0; i < uses; i++) r->refs[slot_of(r, u->src[i])] += w;
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
    const char *t = ctype(r->vars[i]->dtype), *s = ex(r, r->vars[i])->s;
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
  free(r.vec), free(r.vacc), free(r.finish_at), free(r.finishing);
  free(r.ex), free(r.refs), free(r.users), free(r.globals), free(r.vars), free(r.helpers), free(r.pre.p), free(r.body.p);
  lg_ptrmap_free(&r.slot);
  lg_ptrmap_free(&r.stored);
  lg_linear_free(&r.lin);
  return st;
}
