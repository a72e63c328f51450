/* render_llvm_vec.c: the vector lanes of the LLVM renderer (devices/llvm/render_llvm.c writes the
 * rest).
 *
 * A kernel with a RANGE of kind LG_RANGE_LANES (opt.vectorize) computes its W lanes at once, as
 * render_c does: every value that depends on the lanes is an LLVM vector (<16 x float>, <16 x i1>
 * for bool), the RANGE's value is <0, 1, ..., W-1>, scalar operands are put in every lane. An
 * access whose index is ADD(base, lane) (opt.apply writes contiguous ones so) is one vector load
 * or store: under a branch if its gate is one for all lanes, llvm.masked.load or .store if the
 * gate is per lane (as render_c's AVX-512 masked accesses: the lanes off read and write nothing;
 * their addresses may lie outside the buffer, so that address is no inbounds GEP). A load at
 * ADD(base, MUL(lane, 2)) or ADD(base, IDIV(lane, 2)) (a pooling, its gradient) is one masked load
 * of the elements it reads and a shuffle, as render_c's load2_ and loadh_. Any other access is a
 * masked gather or scatter whose lanes with a false gate index element 0. A
 * REDUCE over the lanes keeps a vector accumulator and reduces its lanes (floats added in lane
 * order, as render_c does) once its loops are done, into a scalar accumulator. */
#include <stdio.h>
#include <stdlib.h>

#include "render_llvm.h"

/* the lanes' RANGE: their numbers */
void lg_rl_lanes_value(rnd *r, const lg_lin_inst *in) {
  lg_strbuf b = {0};
  const char *t = lg_rl_ty(in->u->dtype);
  for (int32_t i = 0; i < r->ln.width; i++) lg_strbuf_put(&b, i ? ", %s %d" : "%s %d", t, (int)i);
  *lg_rl_vl(r, in->u) = lg_rl_define(r, "lane", "add <%d x %s> zeroinitializer, <%s>", (int)r->ln.width, t, b.p ? b.p : "");
  r->oom |= b.oom;
  free(b.p);
}

/* an access of whole vectors: index ADD(base, lane) (or the lane: *base NULL); *masked: its
 * gate is per lane */
static bool contiguous(const rnd *r, const lg_uop *idx, const lg_uop **base, bool *masked) {
  const lg_uop *i = idx->src[1];
  *base = NULL;
  *masked = idx->nsrc == 3 && lg_rl_is_vec(r, idx->src[2]);
  if (i == r->ln.lane) return true;
  if (i->op != LG_OP_ADD || i->src[1] != r->ln.lane || lg_rl_is_vec(r, i->src[0])) return false;
  *base = i->src[0];
  return true;
}

/* the address of a contiguous access's first element, as a pointer to a vector (a masked
 * access's may lie outside the buffer: no inbounds) */
static val vector_address(rnd *r, const lg_uop *idx, const lg_uop *base, lg_dtype dt, bool masked) {
  const char *mt = lg_rl_mty(dt);
  val p = lg_rl_address(r, idx, base ? lg_rl_operand(r, base) : lg_rl_text("0"), !masked);
  return lg_rl_inst(r, "bitcast %s* %s to <%d x %s>*", mt, p.s, (int)r->ln.width, mt);
}

/* a gather's or scatter's addresses and mask: lanes whose gate is false index element 0 */
static val lane_addresses(rnd *r, const lg_uop *idx, val *mask) {
  const lg_uop *buf = idx->src[0];
  lg_dtype it = idx->src[1]->dtype;
  const char *mt = lg_rl_mty(lg_dtype_base(buf->dtype));
  tname t = lg_rl_wty(r, it);
  val i = lg_rl_vop(r, idx->src[1]);
  *mask = lg_rl_wconst(r, LG_DT_BOOL, 1, 0);
  if (idx->nsrc == 3) {
    *mask = lg_rl_vop(r, idx->src[2]);
    i = lg_rl_inst(r, "select %s %s, %s %s, %s zeroinitializer", lg_rl_wbool(r).s, mask->s, t.s, i.s, t.s);
  }
  if (lg_dt_is_unsigned(it) && lg_rl_bits(it) < 64) {
    tname wide = lg_rl_wty(r, LG_DT_INT64);
    i = lg_rl_inst(r, "zext %s %s to %s", t.s, i.s, wide.s);
    t = wide;
  }
  return lg_rl_inst(r, "getelementptr inbounds %s, %s* %s, %s %s", mt, mt, lg_rl_vl(r, buf)->s, t.s, i.s);
}

/* the name of llvm.masked.<op> for elements of dtype dt in memory, at a vector pointer
 * (llvm.masked.load.v16f32.p0v16f32) or at a vector of pointers (llvm.masked.gather.v16f32.v16p0f32) */
static void masked_name(const rnd *r, const char *op, lg_dtype dt, bool lanes, char *out, size_t size) {
  lg_dtype m = lg_rl_sid(dt) == LG_DT_BOOL ? LG_DT_INT8 : dt;
  tname v = lg_rl_wsfx(r, m);
  if (lanes) snprintf(out, size, "llvm.masked.%s.%s.v%dp0%s", op, v.s, (int)r->ln.width, lg_rl_sfx(m));
  else snprintf(out, size, "llvm.masked.%s.%s.p0%s", op, v.s, v.s);
}

/* an index ADD(base, op(lane, 2)), op LG_OP_MUL (every other element, as a pooling reads) or
 * LG_OP_IDIV (each element twice, its gradient), as opt.apply writes `base + 2 * lane` and
 * `base + lane / 2` */
static bool by_two(const rnd *r, const lg_uop *idx, int32_t op, const lg_uop **base) {
  const lg_uop *i = idx->src[1], *m;
  if (i->op != LG_OP_ADD || lg_rl_is_vec(r, i->src[0])) return false;
  m = i->src[1];
  if (m->op != op || m->src[0] != r->ln.lane || m->src[1]->op != LG_OP_CONST || m->src[1]->arg.i != 2) return false;
  *base = i->src[0];
  return true;
}

/* shufflevector's mask <n x i32> <i32 f(0), ..., i32 f(n-1)>, f(k) = k * mul / div + add + (k % 2)
 * * odd, written to out (n <= 128: 1,536 bytes hold it) */
typedef struct picks {
  char s[1536];
} picks;
static picks lane_picks(int n, int mul, int div, int add, int odd) {
  picks p;
  int len = snprintf(p.s, sizeof p.s, "<%d x i32> <", n);
  for (int k = 0; k < n; k++)
    len += snprintf(p.s + len, sizeof p.s - (size_t)len, "%si32 %d", k ? ", " : "", k * mul / div + add + (k % 2) * odd);
  snprintf(p.s + len, sizeof p.s - (size_t)len, ">");
  return p;
}

/* A load of the elements a by_two index reads, as render_c's load2_/loadh_: one masked vector
 * load of the 2W elements from base (the even ones only) or of the W/2 elements base + l/2 reads,
 * then a shuffle into the lanes; lanes off the gate get alt. Its value in memory's type m. */
static val load_by_two(rnd *r, const lg_uop *idx, const lg_uop *base, bool two, tname m, val alt) {
  lg_dtype dt = lg_dtype_base(idx->src[0]->dtype), md = lg_rl_sid(dt) == LG_DT_BOOL ? LG_DT_INT8 : dt;
  const char *mt = lg_rl_mty(dt);
  int w = (int)r->ln.width, n = two ? 2 * w : w / 2, align = (int)lg_dtype_itemsize(dt);
  tname b = lg_rl_wbool(r);
  val g = idx->nsrc == 3 ? lg_rl_vop(r, idx->src[2]) : lg_rl_wconst(r, LG_DT_BOOL, 1, 0), mask;
  if (two) { /* lane l's gate at 2l, false at 2l + 1 */
    mask = lg_rl_inst(r, "shufflevector %s %s, %s zeroinitializer, %s", b.s, g.s, b.s, lane_picks(n, 1, 2, 0, w).s);
  } else { /* element k: lanes 2k and 2k + 1 read it */
    val even = lg_rl_inst(r, "shufflevector %s %s, %s undef, %s", b.s, g.s, b.s, lane_picks(n, 2, 1, 0, 0).s);
    val odd = lg_rl_inst(r, "shufflevector %s %s, %s undef, %s", b.s, g.s, b.s, lane_picks(n, 2, 1, 1, 0).s);
    mask = lg_rl_inst(r, "or <%d x i1> %s, %s", n, even.s, odd.s);
  }
  char name[64], args[96];
  snprintf(name, sizeof name, "llvm.masked.load.v%d%s.p0v%d%s", n, lg_rl_sfx(md), n, lg_rl_sfx(md));
  snprintf(args, sizeof args, "<%d x %s>*, i32, <%d x i1>, <%d x %s>", n, mt, n, n, mt);
  char ret[32];
  snprintf(ret, sizeof ret, "<%d x %s>", n, mt);
  lg_rl_declare(r, ret, name, args);
  val p = lg_rl_address(r, idx, lg_rl_operand(r, base), false);
  p = lg_rl_inst(r, "bitcast %s* %s to <%d x %s>*", mt, p.s, n, mt);
  val v = lg_rl_inst(r, "call <%d x %s> @%s(<%d x %s>* %s, i32 %d, <%d x i1> %s, <%d x %s> zeroinitializer)", n, mt, name,
                     n, mt, p.s, align, n, mask.s, n, mt);
  v = lg_rl_inst(r, "shufflevector <%d x %s> %s, <%d x %s> undef, %s", n, mt, v.s, n, mt,
                 (two ? lane_picks(w, 2, 1, 0, 0) : lane_picks(w, 1, 2, 0, 0)).s);
  if (idx->nsrc == 3) v = lg_rl_inst(r, "select %s %s, %s %s, %s %s", b.s, g.s, m.s, v.s, m.s, lg_rl_to_memory(r, dt, alt).s);
  return v;
}

void lg_rl_vload(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u, *idx = u->src[0];
  lg_dtype dt = u->dtype;
  const lg_uop *base;
  const char *mt = lg_rl_mty(dt);
  int w = (int)r->ln.width, align = (int)lg_dtype_itemsize(dt);
  bool mask = lg_rl_sid(dt) == LG_DT_BOOL, gated;
  tname t = lg_rl_wty(r, dt), m = lg_rl_wty(r, LG_DT_INT8), b = lg_rl_wbool(r);
  if (!mask) m = t;
  val alt = u->nsrc > 1 ? lg_rl_vop(r, u->src[1]) : lg_rl_wconst(r, dt, 0, 0.0), v;
  char name[64], args[96];
  bool two = by_two(r, idx, LG_OP_MUL, &base);
  if (two || by_two(r, idx, LG_OP_IDIV, &base)) {
    v = load_by_two(r, idx, base, two, m, alt);
  } else if (!contiguous(r, idx, &base, &gated)) {
    val g, p = lane_addresses(r, idx, &g);
    masked_name(r, "gather", dt, true, name, sizeof name);
    snprintf(args, sizeof args, "<%d x %s*>, i32, %s, %s", w, mt, b.s, m.s);
    lg_rl_declare(r, m.s, name, args);
    val pass = lg_rl_to_memory(r, dt, alt);
    v = lg_rl_inst(r, "call %s @%s(<%d x %s*> %s, i32 %d, %s %s, %s %s)", m.s, name, w, mt, p.s, align, b.s, g.s, m.s, pass.s);
  } else if (gated) {
    masked_name(r, "load", dt, false, name, sizeof name);
    snprintf(args, sizeof args, "%s*, i32, %s, %s", m.s, b.s, m.s);
    lg_rl_declare(r, m.s, name, args);
    val p = vector_address(r, idx, base, dt, true), g = lg_rl_vop(r, idx->src[2]), pass = lg_rl_to_memory(r, dt, alt);
    v = lg_rl_inst(r, "call %s @%s(%s* %s, i32 %d, %s %s, %s %s)", m.s, name, m.s, p.s, align, b.s, g.s, m.s, pass.s);
  } else {
    int32_t k = -1;
    char from[32];
    if (idx->nsrc == 3) k = lg_rl_gate_open(r, lg_rl_operand(r, idx->src[2]), "load", from, sizeof from);
    v = lg_rl_inst(r, "load %s, %s* %s, align %d", m.s, m.s, vector_address(r, idx, base, dt, false).s, align);
    if (mask) v = lg_rl_inst(r, "icmp ne %s %s, zeroinitializer", m.s, v.s);
    if (k >= 0) {
      lg_rl_gate_close(r, k);
      v = lg_rl_inst(r, "phi %s [ %s, %%gate%d.load ], [ %s, %%%s ]", t.s, v.s, (int)k, alt.s, from);
    }
    *lg_rl_vl(r, u) = v;
    return;
  }
  if (mask) v = lg_rl_inst(r, "icmp ne %s %s, zeroinitializer", m.s, v.s);
  *lg_rl_vl(r, u) = v;
}

void lg_rl_vstore(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u, *idx = u->src[0];
  lg_dtype dt = u->src[1]->dtype;
  const lg_uop *base;
  const char *mt = lg_rl_mty(dt);
  int w = (int)r->ln.width, align = (int)lg_dtype_itemsize(dt);
  tname m = lg_rl_wty(r, lg_rl_sid(dt) == LG_DT_BOOL ? LG_DT_INT8 : dt), b = lg_rl_wbool(r);
  val v = lg_rl_to_memory(r, dt, lg_rl_vop(r, u->src[1]));
  bool gated;
  char name[64], args[96];
  if (!contiguous(r, idx, &base, &gated)) {
    val g, p = lane_addresses(r, idx, &g);
    masked_name(r, "scatter", dt, true, name, sizeof name);
    snprintf(args, sizeof args, "%s, <%d x %s*>, i32, %s", m.s, w, mt, b.s);
    lg_rl_declare(r, "void", name, args);
    /* lanes that store to one address store in lane order: the last one's value stays */
    lg_rl_emit(r, "call void @%s(%s %s, <%d x %s*> %s, i32 %d, %s %s)", name, m.s, v.s, w, mt, p.s, align, b.s, g.s);
  } else if (gated) {
    masked_name(r, "store", dt, false, name, sizeof name);
    snprintf(args, sizeof args, "%s, %s*, i32, %s", m.s, m.s, b.s);
    lg_rl_declare(r, "void", name, args);
    val p = vector_address(r, idx, base, dt, true), g = lg_rl_vop(r, idx->src[2]);
    lg_rl_emit(r, "call void @%s(%s %s, %s* %s, i32 %d, %s %s)", name, m.s, v.s, m.s, p.s, align, b.s, g.s);
  } else {
    int32_t k = -1;
    char from[32];
    if (idx->nsrc == 3) k = lg_rl_gate_open(r, lg_rl_operand(r, idx->src[2]), "store", from, sizeof from);
    lg_rl_emit(r, "store %s %s, %s* %s, align %d", m.s, v.s, m.s, vector_address(r, idx, base, dt, false).s, align);
    if (k >= 0) lg_rl_gate_close(r, k);
  }
}

/* a REDUCE over the lanes, once its loops are done: its vector accumulator's lanes reduced, kept
 * in a scalar accumulator from here on. Floats add and multiply in lane order, as render_c does;
 * a float MAX reduces keys (integers, in any order). */
void lg_rl_reduce_finish(rnd *r, const lg_uop *u) {
  lg_dtype at = lg_rl_acc_dt(u);
  int32_t op = lg_lin_reduce_op(u);
  r->w = r->ln.width;
  tname vt = lg_rl_wty(r, at), s = lg_rl_wsfx(r, at);
  r->w = 0;
  const char *t = lg_rl_ty(at);
  val acc = lg_rl_inst(r, "load %s, %s* %s", vt.s, vt.s, lg_rl_vl(r, u)->s), v;
  char name[64], args[64];
  if (lg_dt_is_float(at)) { /* ADD or MUL: from -0.0 (x + -0.0 is x) or 1.0 */
    snprintf(name, sizeof name, "llvm.vector.reduce.f%s.%s", op == LG_OP_MUL ? "mul" : "add", s.s);
    snprintf(args, sizeof args, "%s, %s", t, vt.s);
    lg_rl_declare(r, t, name, args);
    val start = lg_rl_literal(at, 0, op == LG_OP_MUL ? 1.0 : -0.0);
    v = lg_rl_inst(r, "call %s @%s(%s %s, %s %s)", t, name, t, start.s, vt.s, acc.s);
  } else {
    const char *how = lg_dtype_kind(at) == 'b' ? "or" /* MAX */
                      : op == LG_OP_ADD        ? "add"
                      : op == LG_OP_MUL        ? "mul"
                      : lg_rl_is_signed(at)    ? "smax"
                                               : "umax";
    snprintf(name, sizeof name, "llvm.vector.reduce.%s.%s", how, s.s);
    lg_rl_declare(r, t, name, vt.s);
    v = lg_rl_inst(r, "call %s @%s(%s %s)", t, name, vt.s, acc.s);
  }
  lg_rl_new_acc(r, u, t);
  lg_rl_emit(r, "store %s %s, %s* %s", t, v.s, t, lg_rl_vl(r, u)->s);
}
