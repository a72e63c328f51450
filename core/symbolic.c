/* symbolic.c: the division and remainder folding behind the "divmod" native result of
 * rewrite_rules/symbolic.lua. It runs on every IDIV/MOD of a sum by a constant in index math,
 * often enough that a Lua version cost most of the symbolic pass's time.
 *
 * n // d and n % d for a constant d > 0: write n as sum(coef * term) + k and split it as
 * q * d + r (see fold); what stays (r) must be >= 0, with n >= 0, for truncating division to
 * split that way. A result is kept only when it is not larger than the node. */
#include <stdlib.h>

#include "internal.h"

enum { MAX_TERMS = 16, MAX_WALK = 32 };

typedef struct {
  lg_uop *u;
  int64_t c;
} walk_item;

typedef struct {
  lg_uop *term[MAX_TERMS];
  int64_t coef[MAX_TERMS];
  int32_t n;
  int64_t k;
} linear;

/* bounds narrower than the dtype's range prove that a node never wrapped */
static bool exact(const lg_uop *u) {
  int64_t lo, hi;
  return u->has_bounds && lg_dt_is_plain(u->dtype) && lg_dt_int_range(u->dtype, &lo, &hi) &&
         (u->vmin > lo || u->vmax < hi);
}

/* v and -v are values of dt (so a coefficient's magnitude is one too) */
static bool fits(__int128 v, lg_dtype dt) {
  int64_t lo, hi;
  return lg_dt_int_range(dt, &lo, &hi) && v >= lo && v <= hi && -v >= lo && -v <= hi;
}

/* Looks through ADD, SUB, NEG and multiplication by a constant; false when a node on the way
 * may have wrapped, a coefficient leaves the dtype, or the sum has too many parts. */
static bool linear_of(lg_uop *root, lg_dtype dt, linear *s) {
  walk_item stack[MAX_WALK];
  int32_t sp = 0, seen = 0;
  __int128 k = 0;
  s->n = 0;
  stack[sp++] = (walk_item){root, 1};
  while (sp) {
    lg_uop *u = stack[--sp].u;
    int64_t c = stack[sp].c;
    if (++seen > MAX_WALK) return false;
    if (u->op == LG_OP_CONST) {
      k += (__int128)c * u->arg.i;
      if (!fits(k, dt)) return false;
      continue;
    }
    bool mul_const = u->op == LG_OP_MUL && (u->src[0]->op == LG_OP_CONST || u->src[1]->op == LG_OP_CONST);
    if (u->op == LG_OP_ADD || u->op == LG_OP_SUB || u->op == LG_OP_NEG || mul_const) {
      if (!exact(u) || sp + 2 > MAX_WALK) return false;
      if (u->op == LG_OP_NEG) {
        stack[sp++] = (walk_item){u->src[0], -c};
      } else if (mul_const) {
        int b = u->src[1]->op == LG_OP_CONST;
        __int128 cc = (__int128)c * u->src[b]->arg.i;
        if (!fits(cc, dt)) return false;
        stack[sp++] = (walk_item){u->src[!b], (int64_t)cc};
      } else {
        stack[sp++] = (walk_item){u->src[1], u->op == LG_OP_SUB ? -c : c};
        stack[sp++] = (walk_item){u->src[0], c};
      }
      continue;
    }
    int32_t i = 0;
    while (i < s->n && s->term[i] != u) i++;
    if (i == s->n) {
      if (s->n == MAX_TERMS) return false;
      s->term[s->n] = u, s->coef[s->n++] = 0;
    }
    __int128 sum = (__int128)s->coef[i] + c;
    if (!fits(sum, dt)) return false;
    s->coef[i] = (int64_t)sum;
  }
  s->k = (int64_t)k;
  return true;
}

/* binary node a op b, taking over the caller's references to a and b */
static lg_status bin(lg_ctx *ctx, int32_t op, lg_uop *a, lg_uop *b, lg_uop **out) {
  lg_uop *src[2] = {a, b};
  lg_status st = (a && b) ? lg_uop_new(ctx, op, a->dtype, src, 2, NULL, out) : LG_ERR_NOMEM;
  lg_uop_release(a);
  lg_uop_release(b);
  if (st) *out = NULL;
  return st;
}

static lg_uop *konst(lg_ctx *ctx, lg_dtype dt, int64_t v) {
  lg_uop *c;
  return lg_uop_const_int(ctx, dt, v, &c) ? NULL : c;
}

/* sum(coef[i] * term[i]) + k: positive terms first, so negative ones become subtractions */
static lg_status build(lg_ctx *ctx, const linear *s, const int64_t *coef, int64_t k, lg_dtype dt, lg_uop **out) {
  lg_uop *acc = NULL;
  lg_status st = LG_OK;
  for (int pass = 0; pass < 2 && !st; pass++) {
    for (int32_t i = 0; i < s->n && !st; i++) {
      int64_t a = coef[i];
      if (a == 0 || (a > 0) != (pass == 0)) continue;
      uint64_t mag = a < 0 ? -(uint64_t)a : (uint64_t)a;
      lg_uop *t = lg_uop_retain(s->term[i]);
      if (mag != 1 && (st = bin(ctx, LG_OP_MUL, t, konst(ctx, dt, (int64_t)mag), &t))) break;
      if (!acc && a > 0) {
        acc = t;
      } else if (!acc) {
        lg_uop *src[1] = {t};
        st = lg_uop_new(ctx, LG_OP_NEG, dt, src, 1, NULL, &acc);
        lg_uop_release(t);
      } else {
        st = bin(ctx, a < 0 ? LG_OP_SUB : LG_OP_ADD, acc, t, &acc);
      }
    }
  }
  if (!st && (k != 0 || !acc)) {
    if (!acc) acc = konst(ctx, dt, k), st = acc ? LG_OK : LG_ERR_NOMEM;
    else st = bin(ctx, k < 0 ? LG_OP_SUB : LG_OP_ADD, acc, konst(ctx, dt, k < 0 ? -k : k), &acc);
  }
  if (st) {
    lg_uop_release(acc);
    return lg_ctx_fail(ctx, st, "divmod: could not build a node");
  }
  *out = acc;
  return LG_OK;
}

static int64_t gcd(int64_t a, int64_t b) {
  uint64_t x = a < 0 ? -(uint64_t)a : (uint64_t)a, y = b < 0 ? -(uint64_t)b : (uint64_t)b;
  while (y) {
    uint64_t t = x % y;
    x = y, y = t;
  }
  return (int64_t)x;
}

static int64_t floordiv(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

/* n // d and n % d with n = sum(coef * term) + k split as q * d + r, where the coefficients of q
 * are qc and those of r are rc (and k splits into kq, kr); *out stays NULL when the split does
 * not apply (r must be >= 0 with n >= 0 for truncating division to split that way). */
static lg_status split(lg_ctx *ctx, lg_uop *u, const linear *s, const int64_t *qc, const int64_t *rc, int64_t kq,
                       int64_t kr, lg_uop **out) {
  lg_dtype dt = u->dtype;
  int64_t d = u->src[1]->arg.i;
  bool idiv = u->op == LG_OP_IDIV;
  lg_uop *r, *q = NULL;
  lg_status st;
  if ((st = build(ctx, s, rc, kr, dt, &r))) return st;
  if (r->has_bounds && r->vmin >= d) { /* move whole multiples of d from r's constant to q's */
    int64_t m = r->vmin / d;
    lg_uop_release(r);
    kr -= m * d, kq += m;
    if ((st = build(ctx, s, rc, kr, dt, &r))) return st;
  }
  if (r->op == LG_OP_CONST && r->arg.i == 0) { /* exact division: right for either sign */
    if (!idiv) return *out = r, LG_OK;
    lg_uop_release(r);
    return build(ctx, s, qc, kq, dt, out);
  }
  if (u->src[0]->vmin >= 0 && r->has_bounds && r->vmin >= 0) {
    if (!idiv) {
      if (r->vmax < d) return *out = r, LG_OK;
      if (r != u->src[0]) return bin(ctx, LG_OP_MOD, r, konst(ctx, dt, d), out);
      lg_uop_release(r); /* nothing moved out: leave the other strategies a chance */
      return LG_OK;
    }
    if ((st = build(ctx, s, qc, kq, dt, &q))) return lg_uop_release(r), st;
    if (r->vmax < d) return lg_uop_release(r), *out = q, LG_OK;
    if (!(q->op == LG_OP_CONST && q->arg.i == 0)) {
      lg_uop *rd;
      if ((st = bin(ctx, LG_OP_IDIV, r, konst(ctx, dt, d), &rd))) return lg_uop_release(q), st;
      return bin(ctx, LG_OP_ADD, q, rd, out);
    }
    lg_uop_release(q);
  }
  lg_uop_release(r);
  return LG_OK;
}

/* With g dividing d: n = g * big + small, where big holds the terms whose coefficient g divides
 * (and k // g) and small the rest (and k % g). When 0 <= small < g (and n >= 0), n // d is
 * big // (d / g) and n % d is (big % (d / g)) * g + small: (28y + x) // 56 is y // 2 for x < 28. */
static lg_status factor(lg_ctx *ctx, lg_uop *u, const linear *s, int64_t g, lg_uop **out) {
  lg_dtype dt = u->dtype;
  int64_t d = u->src[1]->arg.i, bc[MAX_TERMS], sc[MAX_TERMS];
  if (g <= 1 || u->src[0]->vmin < 0) return LG_OK;
  for (int32_t i = 0; i < s->n; i++) {
    bool big = s->coef[i] % g == 0;
    bc[i] = big ? s->coef[i] / g : 0;
    sc[i] = big ? 0 : s->coef[i];
  }
  int64_t kb = floordiv(s->k, g);
  lg_uop *small, *big, *q;
  lg_status st;
  if ((st = build(ctx, s, sc, s->k - kb * g, dt, &small))) return st;
  if (!small->has_bounds || small->vmin < 0 || small->vmax >= g) return lg_uop_release(small), LG_OK;
  if ((st = build(ctx, s, bc, kb, dt, &big))) return lg_uop_release(small), st;
  if (u->op == LG_OP_IDIV) return lg_uop_release(small), bin(ctx, LG_OP_IDIV, big, konst(ctx, dt, d / g), out);
  if ((st = bin(ctx, LG_OP_MOD, big, konst(ctx, dt, d / g), &q))) return lg_uop_release(small), st;
  if ((st = bin(ctx, LG_OP_MUL, q, konst(ctx, dt, g), &q))) return lg_uop_release(small), st;
  return bin(ctx, LG_OP_ADD, q, small, out);
}

/* The folded form of u (an IDIV or MOD), or NULL in *out. Tries, in order: every coefficient
 * split as c = q * d + r with 0 <= r < d ((17a + b) % 16 is (a + b) % 16); only the coefficients
 * d divides moved out; a factor g of d split off with the terms below g (see factor); a factor
 * common to every coefficient, k and d divided out. */
static lg_status fold(lg_ctx *ctx, lg_uop *u, lg_uop **out) {
  lg_uop *n = u->src[0];
  lg_dtype dt = u->dtype;
  int64_t d = u->src[1]->arg.i;
  linear s;
  int64_t qc[MAX_TERMS], rc[MAX_TERMS];
  lg_status st;
  *out = NULL;
  if (d <= 0 || !exact(n) || !linear_of(n, dt, &s)) return LG_OK;
  int64_t kq = floordiv(s.k, d), kr = s.k - kq * d;
  for (int32_t i = 0; i < s.n; i++) qc[i] = floordiv(s.coef[i], d), rc[i] = s.coef[i] - qc[i] * d;
  if ((st = split(ctx, u, &s, qc, rc, kq, kr, out)) || *out) return st;
  for (int32_t i = 0; i < s.n; i++) {
    bool divides = s.coef[i] % d == 0;
    qc[i] = divides ? s.coef[i] / d : 0;
    rc[i] = divides ? 0 : s.coef[i];
  }
  if ((st = split(ctx, u, &s, qc, rc, kq, kr, out)) || *out) return st;
  for (int32_t i = 0; i < s.n; i++)
    if ((st = factor(ctx, u, &s, gcd(d, s.coef[i]), out)) || *out) return st;
  int64_t g = gcd(d, s.k);
  for (int32_t i = 0; i < s.n; i++) g = gcd(g, s.coef[i]);
  if (g <= 1) return LG_OK;
  for (int32_t i = 0; i < s.n; i++) qc[i] = s.coef[i] / g;
  lg_uop *ng;
  if ((st = build(ctx, &s, qc, s.k / g, dt, &ng))) return st;
  if (u->op == LG_OP_IDIV) return bin(ctx, LG_OP_IDIV, ng, konst(ctx, dt, d / g), out);
  lg_uop *m;
  if ((st = bin(ctx, LG_OP_MOD, ng, konst(ctx, dt, d / g), &m))) return st;
  return bin(ctx, LG_OP_MUL, m, konst(ctx, dt, g), out);
}

lg_status lg_sym_divmod(lg_ctx *ctx, lg_uop *u, lg_uop **out) {
  *out = NULL;
  if ((u->op != LG_OP_IDIV && u->op != LG_OP_MOD) || u->src[1]->op != LG_OP_CONST || !lg_dt_is_plain(u->dtype))
    return LG_OK;
  lg_status st = fold(ctx, u, out);
  if (st || !*out) return st;
  int64_t before = *out == u ? 0 : lg_uop_size(u), after = *out == u ? 1 : lg_uop_size(*out);
  if (before < 0 || after < 0 || after > before) {
    lg_uop_release(*out);
    *out = NULL;
  }
  return LG_OK;
}
