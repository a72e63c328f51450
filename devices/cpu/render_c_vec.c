/* render_c_vec.c: the vector lanes of the C renderer (devices/cpu/render_c.c writes the rest).
 *
 * A kernel with a RANGE of kind LG_RANGE_LANES (opt.vectorize) computes its W lanes at once: every
 * value that depends on the lanes is a GCC vector (`f32x16`, vector_size(64)) and bool lanes are
 * int32 masks (0 or -1, what a vector comparison gives). Accesses, by the index opt.apply writes:
 *   - ADD(base, lane): one vector load or store (`f32x16_u`, unaligned); with a gate per lane an
 *     AVX-512 masked one (`load_f32x16`, `store_f32x16`: lanes off the gate touch no memory);
 *   - ADD(base, MUL(lane, 2)): two masked loads of the even elements and a shuffle (`load2_`);
 *     ADD(base, IDIV(lane, 2)): half a vector loaded, each element twice (`loadh_`);
 *   - any other index of 4-byte lanes: an AVX-512 gather (`gather_`).
 * Each helper has a loop over the lanes for machines without AVX-512. What C has no vector form
 * for also runs as a loop over the lanes: the libm functions, saturating float-to-int casts,
 * division and shifts that need their guards, other gathers and scatters. A REDUCE over the lanes
 * keeps a vector accumulator (products added with fma_f32x16, linearize.h) and adds its lanes up
 * once its loops are done (`add_lanes_f32x16`, through memory: subscripting the accumulator
 * itself would make gcc keep it in memory). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render_c.h"

typedef struct vname {
  char s[16];
} vname;

bool lg_rc_is_vec(const rnd *r, const lg_uop *u) { return r->ln.vec[lg_rc_slot_of(r, u)]; }
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
  lg_rc_need(r, H_VTYPE, lane_dt(dt), 0);
  snprintf(v.s, sizeof v.s, "%sx%d", lg_rc_sfx(lane_dt(dt)), (int)r->ln.width);
  return v;
}

void lg_rc_vec_helper(rnd *r, int32_t kind, lg_dtype a, lg_dtype b) {
  lg_strbuf *h = &r->pre;
  int32_t w = r->ln.width, size = lg_dtype_itemsize(a);
  if (kind == H_VINTRIN) {
    lg_strbuf_put(h, "#if defined(__x86_64__) || defined(__i386__)\n#include <immintrin.h>\n#endif\n");
    return;
  }
  if (kind == H_VTYPE) {
    char t[16];
    snprintf(t, sizeof t, "%sx%d", lg_rc_sfx(a), (int)w);
    lg_strbuf_put(h, "typedef %s %s __attribute__((vector_size(%d)));\n", lg_rc_ctype(a), t, w * size);
    lg_strbuf_put(h, "typedef %s %s_u __attribute__((vector_size(%d), aligned(%d), may_alias)); /* unaligned */\n",
        lg_rc_ctype(a), t, w * size, size);
    return;
  }
  vname t = vtype(r, a), k = vtype(r, int_of(a, true)), m = vtype(r, LG_DT_BOOL);
  switch (kind) {
  case H_VALL:
    lg_strbuf_put(h, "static inline %s %s_all(%s x) { return (%s){", t.s, t.s, lg_rc_ctype(a), t.s);
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
    lg_rc_need(r, H_VINTRIN, 0, 0);
    if (kind == H_VLOAD) {
      lg_strbuf_put(h, "/* the lanes of p where g is set, of alt elsewhere; the others touch no memory */\n"
                       "static inline %s load_%s(const %s *p, %s g, %s alt) {\n", t.s, t.s, lg_rc_ctype(a), m.s, t.s);
      lg_strbuf_put(h, "#if %s\n"
                       "  return (%s)%s_mask_loadu_%s((%s)alt, %s_test_epi32_mask((__m%di)g, (__m%di)g), p);\n#else\n",
          cond, t.s, pre, suf, it, mpre, 32 * w, 32 * w);
      lg_strbuf_put(h, "  for (int32_t l = 0; l < %d; l++)\n    if (g[l]) alt[l] = p[l];\n  return alt;\n#endif\n}\n", w);
    } else {
      lg_strbuf_put(h, "/* v's lanes where g is set stored at p; the others touch no memory */\n"
                       "static inline void store_%s(%s *p, %s g, %s v) {\n", t.s, lg_rc_ctype(a), m.s, t.s);
      lg_strbuf_put(h, "#if %s\n"
                       "  %s_mask_storeu_%s(p, %s_test_epi32_mask((__m%di)g, (__m%di)g), (%s)v);\n#else\n",
          cond, pre, suf, mpre, 32 * w, 32 * w, it);
      lg_strbuf_put(h, "  for (int32_t l = 0; l < %d; l++)\n    if (g[l]) p[l] = v[l];\n#endif\n}\n", w);
    }
    break;
  }
  case H_VGATHER: { /* AVX-512 gathers of 4-byte lanes */
    const char *pre = w == 16 ? "_mm512_mask" : "_mm256_mmask", *suf = lg_dt_is_float(a) ? "ps" : "epi32";
    lg_rc_need(r, H_VINTRIN, 0, 0);
    lg_strbuf_put(h, "/* lane l: p[i[l]] where g is set, alt's elsewhere; the others touch no memory */\n"
                     "static inline %s gather_%s(const %s *p, %s i, %s g, %s alt) {\n", t.s, t.s, lg_rc_ctype(a), m.s, m.s, t.s);
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
    if (native) lg_rc_need(r, H_VINTRIN, 0, 0);
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
    lg_rc_need(r, H_VINTRIN, 0, 0);
    lg_strbuf_put(h, "/* lane l: p[2 * l] where g is set, alt's elsewhere; the odd elements and the lanes off the gate touch no memory */\n"
                     "static inline %s load2_%s(const %s *p, %s g, %s alt) {\n", t.s, t.s, lg_rc_ctype(a), m.s, t.s);
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
    lg_rc_need(r, H_VINTRIN, 0, 0);
    lg_strbuf_put(h, "/* lane l: p[l / 2] where g is set, alt's elsewhere; elements no lane on the gate needs touch no memory */\n"
                     "static inline %s loadh_%s(const %s *p, %s g, %s alt) {\n", t.s, t.s, lg_rc_ctype(a), m.s, t.s);
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
    expr x = lg_rc_build(r, P_PRIMARY, "s"), y = lg_rc_build(r, is_mask(a) ? P_EQ : P_PRIMARY, is_mask(a) ? "t[l] != 0" : "t[l]");
    expr v = lg_rc_op_expr(r, op, a, &x, &y, NULL, (lg_lin_facts){0});
    lg_strbuf_put(h, "static inline %s %s_lanes_%s(%s v) {\n  %s t[%d];\n  __builtin_memcpy(t, &v, sizeof t);\n",
        lg_rc_ctype(a), names[op], t.s, t.s, lg_rc_ctype(lane_dt(a)), (int)w);
    lg_strbuf_put(h, "  %s s = t[0]%s;\n  for (int32_t l = 1; l < %d; l++) s = %s;\n  return s;\n}\n", lg_rc_ctype(a),
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
  const expr *e = lg_rc_ex(r, u);
  if (lg_rc_is_vec(r, u)) return lg_rc_build(r, e->prec, "$", e, P_ANY);
  char tm[48];
  lg_rc_need(r, H_VALL, lane_dt(u->dtype), 0);
  snprintf(tm, sizeof tm, is_mask(u->dtype) ? "%s_all(-(int32_t)$)" : "%s_all($)", vtype(r, u->dtype).s);
  return lg_rc_build(r, P_PRIMARY, tm, e, is_mask(u->dtype) ? P_UNARY : P_ANY);
}

/* u in lane l (a C expression): x[l], a mask's lane as 0 or 1, a scalar as itself */
static expr lane_of(rnd *r, const lg_uop *u, const char *l) {
  const expr *e = lg_rc_ex(r, u);
  char tm[32];
  if (!lg_rc_is_vec(r, u)) return lg_rc_build(r, e->prec, "$", e, P_ANY);
  snprintf(tm, sizeof tm, is_mask(u->dtype) ? "$[%s] != 0" : "$[%s]", l);
  return lg_rc_build(r, is_mask(u->dtype) ? P_EQ : P_PRIMARY, tm, e, P_PRIMARY);
}

/* whether a vector of dt's lanes has masked loads and stores (helpers H_VLOAD, H_VSTORE) */
static bool maskable(const rnd *r, lg_dtype dt) {
  int32_t bytes = r->ln.width * lg_dtype_itemsize(dt);
  return !is_mask(dt) && r->ln.width >= 4 && r->ln.width <= 16 && bytes >= 16 && bytes <= 64;
}

/* an access of whole vectors: index ADD(base, lane) (or the lane: *base NULL), under a gate for
 * all lanes or, where masked loads and stores exist, a gate per lane */
bool lg_rc_contiguous(const rnd *r, const lg_uop *idx, const lg_uop **base) {
  const lg_uop *i = idx->src[1];
  lg_dtype dt = lg_dtype_base(idx->src[0]->dtype);
  *base = NULL;
  if (is_mask(dt) || (idx->nsrc == 3 && lg_rc_is_vec(r, idx->src[2]) && !maskable(r, dt))) return false;
  if (i == r->ln.lane) return true;
  if (i->op != LG_OP_ADD || i->src[1] != r->ln.lane || lg_rc_is_vec(r, i->src[0])) return false;
  *base = i->src[0];
  return true;
}

/* whether loads of dt's lanes can gather (helper H_VGATHER) */
static bool gatherable(const rnd *r, lg_dtype dt) {
  return !is_mask(dt) && lg_dtype_itemsize(dt) == 4 && (r->ln.width == 8 || r->ln.width == 16);
}

/* a load of every other element, index ADD(base, MUL(lane, 2)) (op LG_OP_MUL: helper H_VLOAD2),
 * or of each element twice, index ADD(base, IDIV(lane, 2)) (LG_OP_IDIV: H_VLOADH), as opt.apply
 * writes `base + 2 * lane` and `base + lane / 2`; of 4-byte lanes that gather */
static bool lanes_by_2(const rnd *r, const lg_uop *idx, int32_t op, const lg_uop **base) {
  const lg_uop *i = idx->src[1], *m;
  *base = NULL;
  if (!gatherable(r, lg_dtype_base(idx->src[0]->dtype)) || i->op != LG_OP_ADD || lg_rc_is_vec(r, i->src[0])) return false;
  m = i->src[1];
  if (m->op != op || m->src[0] != r->ln.lane || m->src[1]->op != LG_OP_CONST || m->src[1]->arg.i != 2) return false;
  *base = i->src[0];
  return true;
}
bool lg_rc_strided2(const rnd *r, const lg_uop *idx, const lg_uop **base) { return lanes_by_2(r, idx, LG_OP_MUL, base); }
bool lg_rc_halves(const rnd *r, const lg_uop *idx, const lg_uop **base) { return lanes_by_2(r, idx, LG_OP_IDIV, base); }

/* whether vector node u is computed lane by lane */
bool lg_rc_lane_loop(const rnd *r, const lg_uop *u) {
  const lg_uop *base;
  if (u->op == LG_OP_LOAD || u->op == LG_OP_STORE) return !lg_rc_contiguous(r, u->src[0], &base);
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
  case LG_OP_MOD: return !lg_lin_facts_of(u).div_plain || lg_rc_narrow(dt);
  case LG_OP_SHL:
  case LG_OP_SHR: return !lg_lin_facts_of(u).shift_plain;
  default: return false;
  }
}

/* an ALU op on vectors of dtype dt (the operands' for comparisons, the values' for WHERE) */
static expr valu(rnd *r, int32_t op, lg_dtype dt, const expr *a, const expr *b, const expr *c, lg_lin_facts f) {
  char tm[160];
  bool mask = is_mask(dt), wrap = lg_dtype_kind(dt) == 'i' && !f.nowrap; /* signed lanes that may overflow */
  vname t = vtype(r, dt), ut = wrap ? vtype(r, int_of(dt, false)) : t;
  const char *sym = NULL;
  int32_t p = P_ADD;
  switch (op) {
  case LG_OP_CMPLT:
    if (mask) return lg_rc_build(r, P_BAND, "~$ & $", a, P_UNARY, b, P_BAND); /* masks: -1 is true */
    sym = "<";
    break;
  case LG_OP_CMPNE: sym = "!="; break;
  case LG_OP_CMPEQ: sym = "=="; break;
  case LG_OP_WHERE:
    lg_rc_need(r, H_VWHERE, lane_dt(dt), 0);
    snprintf(tm, sizeof tm, "where_%s($, $, $)", t.s);
    return lg_rc_build(r, P_PRIMARY, tm, a, P_ANY, b, P_ANY, c, P_ANY);
  case LG_OP_MAX:
    if (mask) return lg_rc_build(r, P_BOR, "$ | $", a, P_BOR, b, P_BOR);
    lg_rc_need(r, H_VMAX, dt, 0);
    snprintf(tm, sizeof tm, "max_%s($, $)", t.s);
    return lg_rc_build(r, P_PRIMARY, tm, a, P_ANY, b, P_ANY);
  case LG_OP_NEG:
    if (!wrap) return lg_rc_build(r, P_UNARY, "-$", a, P_UNARY);
    snprintf(tm, sizeof tm, "(%s)-(%s)$", t.s, ut.s);
    return lg_rc_build(r, P_UNARY, tm, a, P_UNARY);
  case LG_OP_RECIPROCAL:
    lg_rc_need(r, H_VALL, dt, 0);
    snprintf(tm, sizeof tm, "%s_all(1) / $", t.s);
    return lg_rc_build(r, P_MUL, tm, a, P_MUL + 1);
  case LG_OP_MULACC:
    if (!wrap) return lg_rc_build(r, P_ADD, "$ * $ + $", a, P_MUL, b, P_MUL + 1, c, P_ADD + 1);
    snprintf(tm, sizeof tm, "(%s)((%s)$ * (%s)$ + (%s)$)", t.s, ut.s, ut.s, ut.s);
    return lg_rc_build(r, P_UNARY, tm, a, P_UNARY, b, P_UNARY, c, P_UNARY);
  case LG_OP_SHL:
    if (!wrap) return lg_rc_build(r, P_SHIFT, "$ << $", a, P_UNARY, b, P_UNARY);
    snprintf(tm, sizeof tm, "(%s)((%s)$ << (%s)$)", t.s, ut.s, ut.s);
    return lg_rc_build(r, P_UNARY, tm, a, P_UNARY, b, P_UNARY);
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
      return lg_rc_build(r, P_EQ, tm, a, P_SHIFT, b, P_SHIFT);
    }
    snprintf(tm, sizeof tm, "__builtin_convertvector($ %s $, %s)", sym, vtype(r, LG_DT_BOOL).s);
    return lg_rc_build(r, P_PRIMARY, tm, a, P_SHIFT, b, P_SHIFT);
  }
  if (wrap && (op == LG_OP_ADD || op == LG_OP_SUB || op == LG_OP_MUL)) {
    snprintf(tm, sizeof tm, "(%s)((%s)$ %s (%s)$)", t.s, ut.s, sym, ut.s);
    return lg_rc_build(r, P_UNARY, tm, a, P_UNARY, b, P_UNARY);
  }
  snprintf(tm, sizeof tm, "$ %s $", sym);
  return lg_rc_build(r, p, tm, a, p, b, p + 1);
}

/* a vector CAST or BITCAST that is not computed lane by lane */
static expr vcast(rnd *r, int32_t op, lg_dtype to, lg_dtype from, const expr *a) {
  char tm[96];
  vname t = vtype(r, to);
  if (to == from) return lg_rc_build(r, a->prec, "$", a, P_ANY);
  if (op == LG_OP_BITCAST) {
    snprintf(tm, sizeof tm, "(%s)$", t.s);
    return lg_rc_build(r, P_UNARY, tm, a, P_UNARY);
  }
  if (is_mask(to)) { /* x != 0 */
    char z[48];
    lg_rc_need(r, H_VALL, from, 0);
    snprintf(z, sizeof z, "%s_all(0)", vtype(r, from).s);
    expr zero = lg_rc_build(r, P_PRIMARY, z), out = valu(r, LG_OP_CMPNE, from, a, &zero, NULL, (lg_lin_facts){0});
    free(zero.s);
    return out;
  }
  snprintf(tm, sizeof tm, is_mask(from) ? "__builtin_convertvector(-$, %s)" : "__builtin_convertvector($, %s)", t.s);
  return lg_rc_build(r, P_PRIMARY, tm, a, is_mask(from) ? P_UNARY : P_ANY);
}

/* `T name;` then a loop over the lanes that sets name[l] = v (a mask's lane to 0 or -1) */
static void lane_lines(rnd *r, int32_t depth, lg_dtype dt, const char *name, const char *guard, expr v) {
  lg_rc_line(r, depth, "%s %s;", vtype(r, dt).s, name);
  lg_rc_line(r, depth, "for (int32_t l = 0; l < %d; l++) %s%s[l] = %s%s%s;", (int)r->ln.width, guard, name,
             is_mask(dt) ? "-(" : "", v.s ? v.s : "", is_mask(dt) ? ")" : "");
  free(v.s);
}

/* a scalar access of lane l: data1[i[l]], gated by g[l] */
static expr lane_access(rnd *r, const lg_uop *idx, expr *gate) {
  char acc[64];
  lg_rc_access_tmpl(idx, acc, sizeof acc);
  expr i = lane_of(r, idx->src[1], "l"), out = lg_rc_build(r, P_PRIMARY, acc, &i, P_ANY);
  *gate = idx->nsrc == 3 ? lane_of(r, idx->src[2], "l") : (expr){0};
  free(i.s);
  return out;
}

static expr zero_vec(rnd *r, lg_dtype dt) {
  char z[48];
  lg_rc_need(r, H_VALL, dt, 0);
  snprintf(z, sizeof z, "%s_all(0)", vtype(r, dt).s);
  return lg_rc_build(r, P_PRIMARY, z);
}

void lg_rc_vload(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u, *idx = u->src[0];
  const lg_uop *base;
  char name[24], tm[128];
  snprintf(name, sizeof name, "val%d", r->nval);
  expr alt = u->nsrc > 1 ? vop(r, u->src[1]) : (expr){0};
  if (lg_rc_contiguous(r, idx, &base)) {
    vname t = vtype(r, u->dtype);
    snprintf(tm, sizeof tm, base ? "*(const %s_u *)(data%lld + $)" : "*(const %s_u *)data%lld", t.s,
             (long long)idx->src[0]->arg.i);
    expr v = base ? lg_rc_build(r, P_UNARY, tm, lg_rc_ex(r, base), P_ANY) : lg_rc_build(r, P_UNARY, tm);
    if (idx->nsrc == 3 && lg_rc_is_vec(r, idx->src[2])) { /* a gate per lane: a masked load */
      if (!alt.s) alt = zero_vec(r, u->dtype);
      lg_rc_need(r, H_VLOAD, u->dtype, 0);
      snprintf(tm, sizeof tm, base ? "load_%s(data%lld + $, $, $)" : "load_%s(data%lld, $, $)", t.s,
               (long long)idx->src[0]->arg.i);
      expr g = base ? lg_rc_build(r, P_PRIMARY, tm, lg_rc_ex(r, base), P_ADD, lg_rc_ex(r, idx->src[2]), P_ANY, &alt, P_ANY)
                    : lg_rc_build(r, P_PRIMARY, tm, lg_rc_ex(r, idx->src[2]), P_ANY, &alt, P_ANY);
      free(v.s), v = g;
    } else if (idx->nsrc == 3) { /* a gate for all lanes */
      if (!alt.s) alt = zero_vec(r, u->dtype);
      snprintf(tm, sizeof tm, "$ ? (%s)$ : $", t.s); /* the aligned type on both sides */
      expr g = lg_rc_build(r, P_COND, tm, lg_rc_ex(r, idx->src[2]), P_BOR, &v, P_UNARY, &alt, P_BOR);
      free(v.s), v = g;
    }
    lg_rc_line(r, in->depth, "%s %s = %s;", t.s, name, v.s ? v.s : "");
    free(v.s);
  } else if (lg_rc_strided2(r, idx, &base) || lg_rc_halves(r, idx, &base)) { /* two loads or one, and a shuffle */
    vname t = vtype(r, u->dtype);
    char all[48];
    bool two = idx->src[1]->src[1]->op == LG_OP_MUL; /* every other element, else each twice */
    lg_rc_need(r, two ? H_VLOAD2 : H_VLOADH, u->dtype, 0);
    lg_rc_need(r, H_VALL, LG_DT_INT32, 0);
    snprintf(all, sizeof all, "%s_all(-1)", vtype(r, LG_DT_BOOL).s);
    expr g = idx->nsrc == 3 ? vop(r, idx->src[2]) : lg_rc_build(r, P_PRIMARY, all);
    if (!alt.s) alt = zero_vec(r, u->dtype);
    snprintf(tm, sizeof tm, "load%s_%s(data%lld + $, $, $)", two ? "2" : "h", t.s, (long long)idx->src[0]->arg.i);
    expr v = lg_rc_build(r, P_PRIMARY, tm, lg_rc_ex(r, base), P_ADD, &g, P_ANY, &alt, P_ANY);
    lg_rc_line(r, in->depth, "%s %s = %s;", t.s, name, v.s ? v.s : "");
    free(v.s), free(g.s);
  } else if (gatherable(r, u->dtype) && lg_rc_is_vec(r, idx->src[1])) { /* a hardware gather */
    vname t = vtype(r, u->dtype);
    char all[48];
    lg_rc_need(r, H_VGATHER, u->dtype, 0);
    lg_rc_need(r, H_VALL, LG_DT_INT32, 0);
    snprintf(all, sizeof all, "%s_all(-1)", vtype(r, LG_DT_BOOL).s);
    expr i = vop(r, idx->src[1]), g = idx->nsrc == 3 ? vop(r, idx->src[2]) : lg_rc_build(r, P_PRIMARY, all);
    if (!alt.s) alt = zero_vec(r, u->dtype);
    snprintf(tm, sizeof tm, "gather_%s(data%lld, $, $, $)", t.s, (long long)idx->src[0]->arg.i);
    expr v = lg_rc_build(r, P_PRIMARY, tm, &i, P_ANY, &g, P_ANY, &alt, P_ANY);
    lg_rc_line(r, in->depth, "%s %s = %s;", t.s, name, v.s ? v.s : "");
    free(v.s), free(i.s), free(g.s);
  } else {
    expr g, a = lane_access(r, idx, &g), v;
    if (g.s) {
      expr al = u->nsrc > 1 ? lane_of(r, u->src[1], "l") : lg_rc_literal(r, u->dtype, 0, 0.0);
      v = lg_rc_build(r, P_COND, "$ ? $ : $", &g, P_BOR, &a, P_BOR, &al, P_BOR);
      free(al.s), free(a.s), free(g.s);
    } else {
      v = a;
    }
    lane_lines(r, in->depth, u->dtype, name, "", v);
  }
  free(alt.s);
  lg_rc_set_name(r, u, "val%lld", r->nval++);
}

void lg_rc_vstore(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u, *idx = u->src[0];
  const lg_uop *base;
  const char *g = idx->nsrc == 3 ? lg_rc_ex(r, idx->src[2])->s : NULL;
  char tm[160];
  if (lg_rc_contiguous(r, idx, &base) && g && lg_rc_is_vec(r, idx->src[2])) { /* a gate per lane: a masked store */
    expr v = vop(r, u->src[1]);
    lg_rc_need(r, H_VSTORE, u->src[1]->dtype, 0);
    snprintf(tm, sizeof tm, base ? "store_%s(data%lld + $, $, $);" : "store_%s(data%lld, $, $);",
             vtype(r, u->src[1]->dtype).s, (long long)idx->src[0]->arg.i);
    expr s = base ? lg_rc_build(r, P_ANY, tm, lg_rc_ex(r, base), P_ADD, lg_rc_ex(r, idx->src[2]), P_ANY, &v, P_ANY)
                  : lg_rc_build(r, P_ANY, tm, lg_rc_ex(r, idx->src[2]), P_ANY, &v, P_ANY);
    lg_rc_line(r, in->depth, "%s", s.s ? s.s : "");
    free(s.s), free(v.s);
    return;
  }
  if (lg_rc_contiguous(r, idx, &base)) {
    expr v = vop(r, u->src[1]);
    snprintf(tm, sizeof tm, "%s%s%s*(%s_u *)(data%lld%s) = $;", g ? "if (" : "", g ? g : "", g ? ") " : "",
             vtype(r, u->src[1]->dtype).s, (long long)idx->src[0]->arg.i, base ? " + $" : "");
    expr s = base ? lg_rc_build(r, P_ANY, tm, lg_rc_ex(r, base), P_ANY, &v, P_ANY) : lg_rc_build(r, P_ANY, tm, &v, P_ANY);
    lg_rc_line(r, in->depth, "%s", s.s ? s.s : "");
    free(s.s), free(v.s);
    return;
  }
  expr gate, a = lane_access(r, idx, &gate), v = lane_of(r, u->src[1], "l");
  expr s = gate.s ? lg_rc_build(r, P_ANY, "if ($) $ = $;", &gate, P_ANY, &a, P_ANY, &v, P_ANY)
                  : lg_rc_build(r, P_ANY, "$ = $;", &a, P_ANY, &v, P_ANY);
  lg_rc_line(r, in->depth, "for (int32_t l = 0; l < %d; l++) %s", (int)r->ln.width, s.s ? s.s : "");
  free(s.s), free(v.s), free(a.s), free(gate.s);
}

/* ALU, CAST, BITCAST on vectors: inline when used once, else a variable */
void lg_rc_vvalue(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u;
  char name[24];
  snprintf(name, sizeof name, "alu%d", r->nalu);
  expr x[3] = {{0}};
  if (lg_rc_lane_loop(r, u)) {
    for (int32_t i = 0; i < u->nsrc; i++) x[i] = lane_of(r, u->src[i], "l");
    expr v = u->op == LG_OP_CAST      ? lg_rc_cast_expr(r, u->dtype, u->src[0]->dtype, &x[0])
             : u->op == LG_OP_BITCAST ? lg_rc_bitcast_expr(r, u->dtype, u->src[0]->dtype, &x[0])
                                      : lg_rc_op_expr(r, u->op, u->dtype, &x[0], &x[1], &x[2], lg_lin_facts_of(u));
    lane_lines(r, in->depth, u->dtype, name, "", v);
  } else {
    for (int32_t i = 0; i < u->nsrc; i++) x[i] = vop(r, u->src[i]);
    lg_dtype dt = u->op == LG_OP_WHERE || lg_op_has(u->op, LG_OPF_CMP) ? u->src[u->nsrc - 1]->dtype : u->dtype;
    expr v = u->op == LG_OP_CAST || u->op == LG_OP_BITCAST ? vcast(r, u->op, u->dtype, u->src[0]->dtype, &x[0])
                                                           : valu(r, u->op, dt, &x[0], &x[1], &x[2], lg_lin_facts_of(u));
    if (r->refs[lg_rc_slot_of(r, u)] <= 1 && v.s && strlen(v.s) <= INLINE_MAX) { /* unused: ADD(base, lane) */
      for (int32_t i = 0; i < u->nsrc; i++) free(x[i].s);
      *lg_rc_ex(r, u) = v;
      return;
    }
    lg_rc_line(r, in->depth, "%s %s = %s;", vtype(r, u->dtype).s, name, v.s ? v.s : "");
    free(v.s);
  }
  for (int32_t i = 0; i < u->nsrc; i++) free(x[i].s);
  lg_rc_set_name(r, u, "alu%lld", r->nalu++);
}

void lg_rc_vreduce_init(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u;
  lg_dtype dt = u->dtype;
  int32_t op = lg_lin_reduce_op(u);
  int64_t lo = 0, hi;
  if (op == LG_OP_MAX && !lg_dt_is_float(dt)) lg_dt_int_range(dt, &lo, &hi);
  expr id = op == LG_OP_MAX ? lg_rc_literal(r, dt, lo, -INFINITY) : lg_rc_literal(r, dt, op == LG_OP_MUL, op == LG_OP_MUL);
  char tm[64];
  lg_rc_need(r, H_VALL, lane_dt(dt), 0);
  snprintf(tm, sizeof tm, is_mask(dt) ? "%s_all(-(int32_t)$)" : "%s_all($)", vtype(r, dt).s);
  expr v = lg_rc_build(r, P_PRIMARY, tm, &id, is_mask(dt) ? P_UNARY : P_ANY);
  lg_rc_line(r, in->depth, "%s acc%d = %s;", vtype(r, dt).s, r->nacc, v.s ? v.s : "");
  free(id.s), free(v.s);
  lg_rc_set_name(r, u, "acc%lld", r->nacc++);
}

void lg_rc_vreduce_update(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u;
  const lg_uop *terms[LG_LIN_FMA_TERMS];
  bool fused[LG_LIN_FMA_TERMS];
  int32_t n = lg_lin_fma_terms(u, lg_rc_users_of, r, terms, fused);
  if (n > 0) { /* as render_c.c's reduce_update, on vectors */
    expr *acc = lg_rc_ex(r, u), e = lg_rc_build(r, acc->prec, "$", acc, P_ANY);
    char tm[48];
    lg_rc_need(r, H_VFMA, u->dtype, 0);
    snprintf(tm, sizeof tm, "fma_%s($, $, $)", vtype(r, u->dtype).s);
    for (int32_t i = 0; i < n; i++) {
      expr next;
      if (fused[i]) {
        expr a = vop(r, terms[i]->src[0]), b = vop(r, terms[i]->src[1]);
        next = lg_rc_build(r, P_PRIMARY, tm, &a, P_ANY, &b, P_ANY, &e, P_ANY);
        free(a.s), free(b.s);
      } else {
        expr t = vop(r, terms[i]);
        next = lg_rc_build(r, P_ADD, "$ + $", &e, P_ADD, &t, P_ADD + 1);
        free(t.s);
      }
      free(e.s), e = next;
    }
    lg_rc_line(r, in->depth, "%s = %s;", acc->s ? acc->s : "", e.s ? e.s : "");
    free(e.s);
    return;
  }
  expr *acc = lg_rc_ex(r, u), x = vop(r, u->src[0]);
  expr v = valu(r, lg_lin_reduce_op(u), u->dtype, acc, &x, NULL, (lg_lin_facts){0});
  lg_rc_line(r, in->depth, "%s = %s;", acc->s ? acc->s : "", v.s ? v.s : "");
  free(v.s), free(x.s);
}

/* a REDUCE over the lanes, once its loops are done: its accumulator's lanes added up */
void lg_rc_vreduce_finish(rnd *r, const lg_uop *u, int32_t depth) {
  static const char *const names[LG_OP__COUNT] = {[LG_OP_ADD] = "add", [LG_OP_MUL] = "mul", [LG_OP_MAX] = "max"};
  int32_t op = lg_lin_reduce_op(u);
  expr *acc = lg_rc_ex(r, u);
  lg_rc_need(r, H_VLANES, u->dtype, (lg_dtype)op);
  lg_rc_line(r, depth, "%s red%d = %s_lanes_%s(%s);", lg_rc_ctype(u->dtype), r->nacc, names[op], vtype(r, u->dtype).s,
             acc->s ? acc->s : "");
  free(acc->s);
  lg_rc_set_name(r, u, "red%lld", r->nacc++);
}

/* the lanes' RANGE: their numbers */
void lg_rc_lanes_value(rnd *r, const lg_lin_inst *in) {
  lg_strbuf b = {0};
  for (int32_t i = 0; i < r->ln.width; i++) lg_strbuf_put(&b, i ? ", %d" : "%d", (int)i);
  lg_rc_line(r, in->depth, "const %s lane = {%s};", vtype(r, in->u->dtype).s, b.p ? b.p : "");
  r->oom |= b.oom;
  free(b.p);
  *lg_rc_ex(r, in->u) = lg_rc_build(r, P_PRIMARY, "lane");
}
