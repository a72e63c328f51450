/* vrange.c: bounds of integer and bool values, computed once when a node is built from the
 * bounds of its sources. Arithmetic is done in 128 bits; a result that leaves the dtype's range
 * could have wrapped, so it falls back to the full range. */
#include "internal.h"

typedef __int128 i128;

static i128 min2(i128 a, i128 b) { return a < b ? a : b; }
static i128 max2(i128 a, i128 b) { return a > b ? a : b; }
static i128 floor_shr(i128 x, int64_t n) { return x >= 0 ? x >> n : -((-x - 1) >> n) - 1; }

typedef struct {
  bool ok;
  i128 lo, hi;
} iv;

static iv bounds_of(const lg_uop *s) { return (iv){s->has_bounds != 0, s->vmin, s->vmax}; }
static bool single(iv a) { return a.ok && a.lo == a.hi; }
static iv mk(i128 lo, i128 hi) { return (iv){true, lo, hi}; }

static iv corners(i128 a, i128 b, i128 c, i128 d) {
  return mk(min2(min2(a, b), min2(c, d)), max2(max2(a, b), max2(c, d)));
}

static iv mul(iv a, iv b) { return corners(a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi); }

/* C's truncating division and remainder, for divisors whose range excludes 0 */
static iv idiv(iv a, iv b) { return corners(a.lo / b.lo, a.lo / b.hi, a.hi / b.lo, a.hi / b.hi); }

static iv mod(iv a, iv b) {
  i128 big = max2(b.lo < 0 ? -b.lo : b.lo, b.hi < 0 ? -b.hi : b.hi);
  i128 small = min2(b.lo < 0 ? -b.lo : b.lo, b.hi < 0 ? -b.hi : b.hi);
  if (a.lo > -small && a.hi < small) return a; /* |a| < |d|: a % d == a */
  /* the remainder takes the numerator's sign and is smaller than both |a| and |d| */
  return mk(a.lo >= 0 ? 0 : max2(a.lo, 1 - big), a.hi <= 0 ? 0 : min2(a.hi, big - 1));
}

static i128 all_ones_above(i128 x) {
  i128 m = 0;
  while (m < x) m = m * 2 + 1;
  return m;
}

static iv bitwise(int32_t op, bool is_bool, iv a, iv b) {
  if (is_bool) {
    if (op == LG_OP_AND) return mk(a.lo & b.lo, a.hi & b.hi);
    if (op == LG_OP_OR) return mk(a.lo | b.lo, a.hi | b.hi);
    return single(a) && single(b) ? mk(a.lo ^ b.lo, a.lo ^ b.lo) : mk(0, 1);
  }
  if (op == LG_OP_AND) {
    /* x & m lies in [0, m] for any x once m >= 0 */
    if (a.lo >= 0 && b.lo >= 0) return mk(0, min2(a.hi, b.hi));
    if (a.lo >= 0 || b.lo >= 0) return mk(0, a.lo >= 0 ? a.hi : b.hi);
    return (iv){0};
  }
  if (a.lo < 0 || b.lo < 0) return (iv){0};
  return mk(op == LG_OP_OR ? max2(a.lo, b.lo) : 0, all_ones_above(max2(a.hi, b.hi)));
}

static iv compare(int32_t op, iv a, iv b) {
  if (!a.ok || !b.ok) return mk(0, 1);
  bool disjoint = a.hi < b.lo || b.hi < a.lo, same = single(a) && single(b) && a.lo == b.lo;
  switch (op) {
  case LG_OP_CMPLT: return a.hi < b.lo ? mk(1, 1) : a.lo >= b.hi ? mk(0, 0) : mk(0, 1);
  case LG_OP_CMPNE: return disjoint ? mk(1, 1) : same ? mk(0, 0) : mk(0, 1);
  default: return disjoint ? mk(0, 0) : same ? mk(1, 1) : mk(0, 1);
  }
}

static iv node_range(const lg_uop *u, int32_t bits) {
  iv a = u->nsrc > 0 ? bounds_of(u->src[0]) : (iv){0};
  iv b = u->nsrc > 1 ? bounds_of(u->src[1]) : (iv){0};
  iv c = u->nsrc > 2 ? bounds_of(u->src[2]) : (iv){0};
  int32_t op = u->op;
  if (lg_op_has(op, LG_OPF_CMP)) return compare(op, a, b);
  switch (op) {
  case LG_OP_CONST: return mk(u->arg.i, u->arg.i);
  case LG_OP_DEFINE_VAR:
    if (u->arg.kind != LG_ARG_STR_INTS || u->arg.n < 2) return (iv){0};
    return mk(u->arg.ints[0], u->arg.ints[1]);
  case LG_OP_RANGE:
  case LG_OP_SPECIAL:
    if (!a.ok) return (iv){0};
    return mk(0, a.hi > 1 ? a.hi - 1 : 0);
  case LG_OP_WHERE:
    if (single(a)) return a.lo ? b : c;
    return b.ok && c.ok ? mk(min2(b.lo, c.lo), max2(b.hi, c.hi)) : (iv){0};
  case LG_OP_CAST:
    if (lg_dtype_kind(u->dtype) == 'b' && a.ok) return mk(a.lo > 0 || a.hi < 0, a.lo != 0 || a.hi != 0);
    return a;
  case LG_OP_BIND: return a;
  case LG_OP_NEG: return a.ok ? mk(-a.hi, -a.lo) : a;
  default: break;
  }
  if (!a.ok || !b.ok || !lg_op_has(op, LG_OPF_BINARY | LG_OPF_TERNARY)) return (iv){0};
  switch (op) {
  case LG_OP_ADD: return mk(a.lo + b.lo, a.hi + b.hi);
  case LG_OP_SUB: return mk(a.lo - b.hi, a.hi - b.lo);
  case LG_OP_MUL: return mul(a, b);
  case LG_OP_MULACC: {
    if (!c.ok) return c;
    iv p = mul(a, b);
    return mk(p.lo + c.lo, p.hi + c.hi);
  }
  case LG_OP_IDIV: return b.lo > 0 || b.hi < 0 ? idiv(a, b) : (iv){0};
  case LG_OP_MOD: return b.lo > 0 || b.hi < 0 ? mod(a, b) : (iv){0};
  case LG_OP_MAX: return mk(max2(a.lo, b.lo), max2(a.hi, b.hi));
  case LG_OP_AND:
  case LG_OP_OR:
  case LG_OP_XOR: return bitwise(op, lg_dtype_kind(u->dtype) == 'b', a, b);
  case LG_OP_SHL:
  case LG_OP_SHR:
    if (!single(b) || b.lo < 0 || b.lo >= bits) return (iv){0};
    if (op == LG_OP_SHL) return mk(a.lo * ((i128)1 << b.lo), a.hi * ((i128)1 << b.lo));
    return mk(floor_shr(a.lo, (int64_t)b.lo), floor_shr(a.hi, (int64_t)b.lo));
  default: return (iv){0};
  }
}

void lg_vrange_compute(lg_uop *u) {
  int64_t lo, hi;
  u->has_bounds = 0;
  if (!lg_dt_is_plain(u->dtype) || !lg_dt_int_range(u->dtype, &lo, &hi)) return;
  iv r = node_range(u, 8 * lg_dtype_itemsize(u->dtype));
  if (r.ok && r.lo >= lo && r.hi <= hi && r.lo <= r.hi) lo = (int64_t)r.lo, hi = (int64_t)r.hi;
  u->has_bounds = 1;
  u->vmin = lo;
  u->vmax = hi;
}
