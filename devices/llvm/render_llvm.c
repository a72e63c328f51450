/* render_llvm.c: a kernel graph as LLVM IR text for the LLVM device (what DEBUG=4 shows);
 * lg_render_llvm in luagrad.h. It follows devices/cpu/render_c.c step by step: the same
 * linearized walk, the same checks, the same value semantics, so both devices compute the same
 * bits.
 *
 * The module holds two functions and a constant:
 *   - `name` with the CPU calling convention of luagrad.h: it reads bufs[] and ints[] and calls
 *   - `name.body`, whose parameters are core_id, ncores, the buffers (`noalias`, as render_c's
 *     `restrict`; 64-byte aligned; `readonly` when the kernel only loads from them) and the
 *     DEFINE_VARs. It is internal and always inlined: the inliner turns `noalias` into alias scopes;
 *   - `@name_split = constant [2 x i64]`: render_c's `<name>_split`, found by the same rule
 *     (lg_lin_split): the first output loop at the top level runs the iterations
 *     [n * core_id / ncores, n * (core_id + 1) / ncores) on each core; when no loop can be split,
 *     `name` returns at once on every core but core 0. devices/llvm/llvm.c launches from it.
 * Inside the body:
 *   - every value is an SSA register (`%val` for loads, `%alu` for the rest), constants inline
 *     (floats in LLVM's hexadecimal form: exact);
 *   - a loop is a header block with a phi `%ridxN` counting from 0, its body, a latch and an exit;
 *   - a REDUCE accumulator is an `alloca` (`%accN`) stored at its INIT and UPDATE and loaded where
 *     the value is used; the optimizer (mem2reg) turns it into registers. A float MAX accumulates
 *     integer keys that order as the floats do (see keyed()), so that it vectorizes;
 *   - a gated LOAD or STORE branches around the access: the address is only formed under the gate.
 * Values, as in render_c.c (core/alu.c's folding, no undefined behaviour, no poison):
 *   - integer ADD, SUB, MUL, NEG wrap (LLVM's plain instructions); `nsw` only where the bounds of a
 *     signed result (core/vrange.c) show that it cannot wrap;
 *   - IDIV and MOD by 0 give 0 and INT_MIN / -1 wraps (the divisor is replaced by 1 first, so the
 *     division itself is always defined); int8 and int16 divide in int32 as C does; shifts by
 *     amounts outside [0, bits) give 0 (-1 for SHR of a negative value); a float -> int CAST
 *     saturates and NaN gives 0 (llvm.fpto[su]i.sat); each guard is left out where the operands'
 *     bounds rule the case out;
 *   - MAX of floats is NaN when a side is NaN and orders -0.0 below 0.0 (compares and selects);
 *   - no fast-math flags and no fused multiply-add: MULACC is a multiply then an add;
 *   - float16 and bfloat16 values live in float registers, memory holds their bits (i16); each
 *     operation rounds to the dtype (float is wide enough for one correct rounding): float16
 *     through llvm.convert.{to,from}.fp16 (F16C instructions), bfloat16 through the helpers
 *     @bf16_round and friends, emitted only when used. Not fptrunc and fpext to `half`: LLVM
 *     would narrow the float operation between them into a `half` one, and LLVM 14 scalarizes
 *     vectors of those (half a second of codegen for a 4096-element loop). A double goes to
 *     float16 or bfloat16 through float rounded to odd, so it rounds once;
 *   - bool is i1 in registers and one byte in memory (loaded as `!= 0`).
 * Vector lanes (a RANGE of kind LG_RANGE_LANES, opt.vectorize) are LLVM vectors:
 * devices/llvm/render_llvm_vec.c; render_llvm.h holds what the two files share. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render_llvm.h"

/* helpers a kernel may need, emitted once each */
enum { H_BF16 = 1, H_ODD_F32 = 2, H_BF16_DOUBLE = 4, H_ODD_DOUBLE = 8 };

/* ---- text --------------------------------------------------------------------------------------- */

lg_status lg_rl_fail(rnd *r, const lg_uop *u, const char *fmt, ...) {
  char msg[512], d[96];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return lg_ctx_fail(r->ctx, LG_ERR_SPEC, "render LLVM: %s: %s", lg_lin_describe(u, d, sizeof d), msg);
}

static void vput(rnd *r, lg_strbuf *b, const char *prefix, const char *fmt, va_list ap) {
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) {
    r->oom = true;
    return;
  }
  lg_strbuf_put(b, "%s%s\n", prefix, s);
  free(s);
}

/* an instruction without a result */
void lg_rl_emit(rnd *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vput(r, &r->body, "  ", fmt, ap);
  va_end(ap);
}

/* an instruction whose result is a new register %<prefix><n>; returns the register */
static val vdefine(rnd *r, const char *prefix, const char *fmt, va_list ap) {
  val v;
  snprintf(v.s, sizeof v.s, "%%%s%d", prefix, r->nname++);
  char lead[48];
  snprintf(lead, sizeof lead, "  %s = ", v.s);
  vput(r, &r->body, lead, fmt, ap);
  return v;
}

val lg_rl_define(rnd *r, const char *prefix, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  val v = vdefine(r, prefix, fmt, ap);
  va_end(ap);
  return v;
}

val lg_rl_inst(rnd *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  val v = vdefine(r, "alu", fmt, ap);
  va_end(ap);
  return v;
}

/* start the basic block <kind><n><suffix> */
static void block(rnd *r, const char *kind, int32_t n, const char *suffix) {
  snprintf(r->block, sizeof r->block, "%s%d%s", kind, (int)n, suffix);
  lg_strbuf_put(&r->body, "%s:\n", r->block);
}

/* ---- dtypes and literals ------------------------------------------------------------------------ */

int32_t lg_rl_sid(lg_dtype dt) { return lg_dt_scalar_id(dt); }
int32_t lg_rl_bits(lg_dtype dt) { return 8 * lg_dtype_itemsize(dt); }
static bool narrow(lg_dtype dt) { return lg_dtype_itemsize(dt) < 4; }
bool lg_rl_is_bf16(lg_dtype dt) { return lg_rl_sid(dt) == LG_DT_BFLOAT16; }
bool lg_rl_is_f16(lg_dtype dt) { return lg_rl_sid(dt) == LG_DT_FLOAT16; }
static bool is_f64(lg_dtype dt) { return lg_rl_sid(dt) == LG_DT_FLOAT64; }
bool lg_rl_is_signed(lg_dtype dt) { return lg_dtype_kind(dt) == 'i'; }

/* the IR type of a value */
const char *lg_rl_ty(lg_dtype dt) {
  static const char *const names[LG_DT__COUNT] = {
      [LG_DT_BOOL] = "i1",     [LG_DT_INT8] = "i8",       [LG_DT_INT16] = "i16",     [LG_DT_INT32] = "i32",
      [LG_DT_INT64] = "i64",   [LG_DT_UINT8] = "i8",      [LG_DT_UINT16] = "i16",    [LG_DT_UINT32] = "i32",
      [LG_DT_UINT64] = "i64",  [LG_DT_FLOAT16] = "float", [LG_DT_BFLOAT16] = "float", [LG_DT_FLOAT32] = "float",
      [LG_DT_FLOAT64] = "double"};
  return names[lg_rl_sid(dt)] ? names[lg_rl_sid(dt)] : "void";
}

/* the IR type of an element in memory */
const char *lg_rl_mty(lg_dtype dt) {
  return lg_rl_sid(dt) == LG_DT_BOOL ? "i8" : lg_rl_is_bf16(dt) || lg_rl_is_f16(dt) ? "i16" : lg_rl_ty(dt);
}

/* the integer dtype of a float register's bits */
static lg_dtype ibits(lg_dtype dt) { return is_f64(dt) ? LG_DT_INT64 : LG_DT_INT32; }

val lg_rl_text(const char *s) {
  val v;
  snprintf(v.s, sizeof v.s, "%s", s);
  return v;
}

/* a constant of dtype dt: integers as signed decimals of their width, floats in hexadecimal (the
 * bits of the double: exact), float16 and bfloat16 rounded to their dtype */
val lg_rl_literal(lg_dtype dt, int64_t i, double f) {
  val v;
  int32_t n = lg_rl_bits(dt);
  if (lg_rl_sid(dt) == LG_DT_BOOL) {
    snprintf(v.s, sizeof v.s, "%s", i ? "true" : "false");
  } else if (lg_dt_is_float(dt)) {
    double d = is_f64(dt) ? f : (double)(float)lg_round_float(dt, f);
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    snprintf(v.s, sizeof v.s, "0x%016llX", (unsigned long long)b);
  } else {
    uint64_t u = (uint64_t)i;
    if (n < 64) u = (u & ((UINT64_C(1) << n) - 1)) ^ (UINT64_C(1) << (n - 1)), u -= UINT64_C(1) << (n - 1);
    snprintf(v.s, sizeof v.s, "%lld", (long long)(int64_t)u);
  }
  return v;
}

/* Types and constants at the width being written (r->w): scalars, or vectors of the lanes. */

/* scalar s at the width: s itself, or `vector` (a format of the width and s) */
static tname at_width(const rnd *r, const char *vector, const char *s) {
  tname t;
  if (r->w) snprintf(t.s, sizeof t.s, vector, (int)r->w, s);
  else snprintf(t.s, sizeof t.s, "%s", s);
  return t;
}

/* the IR type of a value of dtype dt: float, or <16 x float> */
tname lg_rl_wty(const rnd *r, lg_dtype dt) { return at_width(r, "<%d x %s>", lg_rl_ty(dt)); }

tname lg_rl_wbool(const rnd *r) { return lg_rl_wty(r, LG_DT_BOOL); }

/* the suffix of an intrinsic's name for a scalar of dtype dt: f32, i8, i1 */
const char *lg_rl_sfx(lg_dtype dt) { return lg_dt_is_float(dt) ? (is_f64(dt) ? "f64" : "f32") : lg_rl_ty(dt); }

/* ... and for type wty(r, dt): f32, v16f32, v16i1 */
tname lg_rl_wsfx(const rnd *r, lg_dtype dt) { return at_width(r, "v%d%s", lg_rl_sfx(dt)); }

/* a scalar x of dtype dt in every lane */
static val splat(rnd *r, lg_dtype dt, val x) {
  const char *t = lg_rl_ty(dt);
  int w = (int)r->ln.width;
  val one = lg_rl_inst(r, "insertelement <%d x %s> poison, %s %s, i32 0", w, t, t, x.s);
  return lg_rl_inst(r, "shufflevector <%d x %s> %s, <%d x %s> poison, <%d x i32> zeroinitializer", w, t, one.s, w, t, w);
}

/* a constant of dtype dt (literal()) at the width being written */
val lg_rl_wconst(rnd *r, lg_dtype dt, int64_t i, double f) {
  val c = lg_rl_literal(dt, i, f);
  if (!r->w) return c;
  if (!strcmp(c.s, "0") || !strcmp(c.s, "false") || !strcmp(c.s, "0x0000000000000000")) return lg_rl_text("zeroinitializer");
  return splat(r, dt, c);
}

/* ---- helpers emitted into the module ------------------------------------------------------------ */

/* Emit helper `kind` and what it needs, once. */
static void need(rnd *r, uint32_t kind) {
  if (r->helpers & kind) return;
  r->helpers |= kind;
  lg_strbuf *h = &r->pre;
  switch (kind) {
  case H_BF16:
    lg_strbuf_put(h, "; bfloat16: values in float registers, rounded after each operation; memory holds the bits\n"
                     "define internal float @bf16_to_float(i16 %%b) alwaysinline {\n"
                     "  %%w = zext i16 %%b to i32\n"
                     "  %%s = shl i32 %%w, 16\n"
                     "  %%f = bitcast i32 %%s to float\n"
                     "  ret float %%f\n"
                     "}\n"
                     "define internal i16 @float_to_bf16(float %%f) alwaysinline { ; to nearest even\n"
                     "  %%u = bitcast float %%f to i32\n"
                     "  %%hi = lshr i32 %%u, 16\n"
                     "  %%quiet = or i32 %%hi, 64\n"
                     "  %%odd = and i32 %%hi, 1\n"
                     "  %%bias = add i32 %%odd, 32767\n"
                     "  %%sum = add i32 %%u, %%bias\n"
                     "  %%rounded = lshr i32 %%sum, 16\n"
                     "  %%nan = fcmp uno float %%f, %%f\n"
                     "  %%r = select i1 %%nan, i32 %%quiet, i32 %%rounded\n"
                     "  %%t = trunc i32 %%r to i16\n"
                     "  ret i16 %%t\n"
                     "}\n"
                     "define internal float @bf16_round(float %%f) alwaysinline {\n"
                     "  %%b = call i16 @float_to_bf16(float %%f)\n"
                     "  %%r = call float @bf16_to_float(i16 %%b)\n"
                     "  ret float %%r\n"
                     "}\n");
    break;
  case H_ODD_F32:
    lg_strbuf_put(h, "; a double to float rounding to odd: rounding that to float16 or bfloat16 is then exact\n"
                     "define internal float @round_odd_f32(double %%d) alwaysinline {\n"
                     "  %%f = fptrunc double %%d to float\n"
                     "  %%back = fpext float %%f to double\n"
                     "  %%inexact = fcmp one double %%back, %%d\n"
                     "  %%u = bitcast float %%f to i32\n"
                     "  %%lsb = and i32 %%u, 1\n"
                     "  %%even = icmp eq i32 %%lsb, 0\n"
                     "  %%move = and i1 %%inexact, %%even\n"
                     "  %%below = fcmp olt double %%back, %%d\n"
                     "  %%positive = icmp sgt i32 %%u, -1\n"
                     "  %%grow = icmp eq i1 %%below, %%positive\n"
                     "  %%step = select i1 %%grow, i32 1, i32 -1\n"
                     "  %%next = add i32 %%u, %%step\n"
                     "  %%nf = bitcast i32 %%next to float\n"
                     "  %%r = select i1 %%move, float %%nf, float %%f\n"
                     "  ret float %%r\n"
                     "}\n");
    break;
  case H_BF16_DOUBLE:
    need(r, H_BF16), need(r, H_ODD_F32);
    lg_strbuf_put(h, "define internal float @bf16_round_double(double %%d) alwaysinline {\n"
                     "  %%f = call float @round_odd_f32(double %%d)\n"
                     "  %%r = call float @bf16_round(float %%f)\n"
                     "  ret float %%r\n"
                     "}\n");
    break;
  default: /* H_ODD_DOUBLE */
    need(r, H_BF16_DOUBLE);
    lg_strbuf_put(h, "; a 64-bit integer to double rounding to odd, so that bf16_round_double rounds it once\n"
                     "declare i64 @llvm.ctlz.i64(i64, i1)\n"
                     "define internal double @odd_double_u64(i64 %%m) alwaysinline {\n"
                     "  %%hi = lshr i64 %%m, 53\n"
                     "  %%big = icmp ne i64 %%hi, 0\n"
                     "  %%lz = call i64 @llvm.ctlz.i64(i64 %%m, i1 false)\n"
                     "  %%s0 = sub i64 11, %%lz\n"
                     "  %%s = select i1 %%big, i64 %%s0, i64 0\n"
                     "  %%q = lshr i64 %%m, %%s\n"
                     "  %%unit = shl i64 1, %%s\n"
                     "  %%mask = sub i64 %%unit, 1\n"
                     "  %%rest = and i64 %%m, %%mask\n"
                     "  %%inexact = icmp ne i64 %%rest, 0\n"
                     "  %%sticky = zext i1 %%inexact to i64\n"
                     "  %%odd = or i64 %%q, %%sticky\n"
                     "  %%d = uitofp i64 %%odd to double\n"
                     "  %%scale = uitofp i64 %%unit to double\n"
                     "  %%r = fmul double %%d, %%scale\n"
                     "  ret double %%r\n"
                     "}\n"
                     "define internal double @odd_double_i64(i64 %%x) alwaysinline {\n"
                     "  %%neg = icmp slt i64 %%x, 0\n"
                     "  %%minus = sub i64 0, %%x\n"
                     "  %%m = select i1 %%neg, i64 %%minus, i64 %%x\n"
                     "  %%d = call double @odd_double_u64(i64 %%m)\n"
                     "  %%nd = fneg double %%d\n"
                     "  %%r = select i1 %%neg, double %%nd, double %%d\n"
                     "  ret double %%r\n"
                     "}\n");
  }
}

/* Declare an intrinsic once: "declare <ret> @<name>(<args>)". */
void lg_rl_declare(rnd *r, const char *ret, const char *name, const char *args) {
  char line[160];
  snprintf(line, sizeof line, "declare %s @%s(%s)\n", ret, name, args);
  if (!r->pre.p || !strstr(r->pre.p, line)) lg_strbuf_put(&r->pre, "%s", line);
}

/* ---- operations ----------------------------------------------------------------------------------
 * Each works at the width being written (r->w): LLVM's instructions and the intrinsics' vector
 * forms work lane by lane, so one text serves scalars and vectors. float16 and bfloat16 are
 * scalars only (their vector lanes are rejected). */

/* float16 bits of a float register, to nearest even, and the float of float16 bits */
static val f16_bits(rnd *r, val x) {
  lg_rl_declare(r, "i16", "llvm.convert.to.fp16.f32", "float");
  return lg_rl_inst(r, "call i16 @llvm.convert.to.fp16.f32(float %s)", x.s);
}

static val f16_value(rnd *r, const char *prefix, val b) {
  lg_rl_declare(r, "float", "llvm.convert.from.fp16.f32", "i16");
  return lg_rl_define(r, prefix, "call float @llvm.convert.from.fp16.f32(i16 %s)", b.s);
}

/* a float result rounded to its dtype */
static val round_to(rnd *r, lg_dtype dt, val v) {
  if (lg_rl_is_f16(dt)) return f16_value(r, "alu", f16_bits(r, v));
  if (!lg_rl_is_bf16(dt)) return v;
  need(r, H_BF16);
  return lg_rl_inst(r, "call float @bf16_round(float %s)", v.s);
}

/* llvm.<fn> on float operands of dtype dt; float16 and bfloat16 run it in float and round once
 * (as C's sinf on a _Float16), TRUNC is exact in every dtype */
static val math_call(rnd *r, const char *fn, lg_dtype dt, int32_t n, val a, val b) {
  tname t = lg_rl_wty(r, dt), s = lg_rl_wsfx(r, dt);
  char name[40], args[64];
  snprintf(name, sizeof name, "llvm.%s.%s", fn, s.s);
  snprintf(args, sizeof args, n == 2 ? "%s, %s" : "%s", t.s, t.s);
  lg_rl_declare(r, t.s, name, args);
  val v = n == 2 ? lg_rl_inst(r, "call %s @%s(%s %s, %s %s)", t.s, name, t.s, a.s, t.s, b.s)
                 : lg_rl_inst(r, "call %s @%s(%s %s)", t.s, name, t.s, a.s);
  return strcmp(fn, "trunc") == 0 ? v : round_to(r, dt, v);
}

/* MAX of floats: NaN when a side is NaN (the quiet NaN of C's NAN), -0.0 below 0.0 */
static val float_max(rnd *r, lg_dtype dt, val a, val b) {
  tname t = lg_rl_wty(r, dt), it = lg_rl_wty(r, ibits(dt)), c = lg_rl_wbool(r);
  val uno = lg_rl_inst(r, "fcmp uno %s %s, %s", t.s, a.s, b.s), gt = lg_rl_inst(r, "fcmp ogt %s %s, %s", t.s, a.s, b.s),
      eq = lg_rl_inst(r, "fcmp oeq %s %s, %s", t.s, a.s, b.s), ab = lg_rl_inst(r, "bitcast %s %s to %s", t.s, a.s, it.s),
      pos = lg_rl_inst(r, "icmp sgt %s %s, %s", it.s, ab.s, lg_rl_wconst(r, ibits(dt), -1, 0).s),
      eqpos = lg_rl_inst(r, "and %s %s, %s", c.s, eq.s, pos.s), pick = lg_rl_inst(r, "or %s %s, %s", c.s, gt.s, eqpos.s),
      m = lg_rl_inst(r, "select %s %s, %s %s, %s %s", c.s, pick.s, t.s, a.s, t.s, b.s);
  return lg_rl_inst(r, "select %s %s, %s %s, %s %s", c.s, uno.s, t.s, lg_rl_wconst(r, dt, 0, NAN).s, t.s, m.s);
}

static val float_op(rnd *r, int32_t op, lg_dtype dt, val a, val b, val c) {
  static const char *const fn[LG_OP__COUNT] = {[LG_OP_SQRT] = "sqrt", [LG_OP_EXP2] = "exp2", [LG_OP_LOG2] = "log2",
                                               [LG_OP_SIN] = "sin",   [LG_OP_TRUNC] = "trunc"};
  tname t = lg_rl_wty(r, dt);
  switch (op) {
  case LG_OP_ADD: return round_to(r, dt, lg_rl_inst(r, "fadd %s %s, %s", t.s, a.s, b.s));
  case LG_OP_SUB: return round_to(r, dt, lg_rl_inst(r, "fsub %s %s, %s", t.s, a.s, b.s));
  case LG_OP_MUL: return round_to(r, dt, lg_rl_inst(r, "fmul %s %s, %s", t.s, a.s, b.s));
  case LG_OP_FDIV: return round_to(r, dt, lg_rl_inst(r, "fdiv %s %s, %s", t.s, a.s, b.s));
  case LG_OP_NEG: return lg_rl_inst(r, "fneg %s %s", t.s, a.s);
  case LG_OP_RECIPROCAL: return round_to(r, dt, lg_rl_inst(r, "fdiv %s %s, %s", t.s, lg_rl_wconst(r, dt, 1, 1.0).s, a.s));
  case LG_OP_MAX: return float_max(r, dt, a, b);
  case LG_OP_MULACC: {
    val m = round_to(r, dt, lg_rl_inst(r, "fmul %s %s, %s", t.s, a.s, b.s));
    return round_to(r, dt, lg_rl_inst(r, "fadd %s %s, %s", t.s, m.s, c.s));
  }
  case LG_OP_POW: return math_call(r, "pow", dt, 2, a, b);
  default: return math_call(r, fn[op], dt, 1, a, b);
  }
}

/* IDIV, MOD: a division by 0 gives 0, INT_MIN / -1 wraps */
static val divide(rnd *r, int32_t op, lg_dtype dt, val a, val b, bool plain) {
  tname t = lg_rl_wty(r, dt), c = lg_rl_wbool(r);
  bool sgn = lg_rl_is_signed(dt);
  if (sgn && narrow(dt)) { /* C divides int8 and int16 in int: no overflow there */
    tname t32 = lg_rl_wty(r, LG_DT_INT32);
    val a32 = lg_rl_inst(r, "sext %s %s to %s", t.s, a.s, t32.s), b32 = lg_rl_inst(r, "sext %s %s to %s", t.s, b.s, t32.s);
    val q = divide(r, op, LG_DT_INT32, a32, b32, plain);
    return lg_rl_inst(r, "trunc %s %s to %s", t32.s, q.s, t.s);
  }
  const char *ins = op == LG_OP_IDIV ? (sgn ? "sdiv" : "udiv") : (sgn ? "srem" : "urem");
  if (plain) return lg_rl_inst(r, "%s %s %s, %s", ins, t.s, a.s, b.s);
  val zero = lg_rl_inst(r, "icmp eq %s %s, %s", t.s, b.s, lg_rl_wconst(r, dt, 0, 0).s), bad = zero, minus = {{0}};
  if (sgn) {
    minus = lg_rl_inst(r, "icmp eq %s %s, %s", t.s, b.s, lg_rl_wconst(r, dt, -1, 0).s);
    bad = lg_rl_inst(r, "or %s %s, %s", c.s, zero.s, minus.s);
  }
  val safe = lg_rl_inst(r, "select %s %s, %s %s, %s %s", c.s, bad.s, t.s, lg_rl_wconst(r, dt, 1, 0).s, t.s, b.s);
  val q = lg_rl_inst(r, "%s %s %s, %s", ins, t.s, a.s, safe.s);
  if (op == LG_OP_MOD) return q; /* x % 1 is 0: right for 0 and -1 */
  if (sgn) {
    val neg = lg_rl_inst(r, "sub %s %s, %s", t.s, lg_rl_wconst(r, dt, 0, 0).s, a.s);
    q = lg_rl_inst(r, "select %s %s, %s %s, %s %s", c.s, minus.s, t.s, neg.s, t.s, q.s);
  }
  return lg_rl_inst(r, "select %s %s, %s %s, %s %s", c.s, zero.s, t.s, lg_rl_wconst(r, dt, 0, 0).s, t.s, q.s);
}

/* SHL, SHR by an amount of dtype bdt: outside [0, bits) SHL gives 0, SHR 0 or -1 (negative) */
static val shift(rnd *r, int32_t op, lg_dtype dt, lg_dtype bdt, val a, val b, bool plain) {
  tname t = lg_rl_wty(r, dt), bt = lg_rl_wty(r, bdt), c = lg_rl_wbool(r);
  int32_t n = lg_rl_bits(dt), nb = lg_rl_bits(bdt);
  val amt = b; /* used only when it is in [0, n): then truncating or zero-extending keeps it */
  if (nb > n) amt = lg_rl_inst(r, "trunc %s %s to %s", bt.s, b.s, t.s);
  if (nb < n) amt = lg_rl_inst(r, "zext %s %s to %s", bt.s, b.s, t.s);
  const char *ins = op == LG_OP_SHL ? "shl" : lg_rl_is_signed(dt) ? "ashr" : "lshr";
  if (plain) return lg_rl_inst(r, "%s %s %s, %s", ins, t.s, a.s, amt.s);
  /* a negative amount is a large unsigned one */
  val ok = lg_rl_inst(r, "icmp ult %s %s, %s", bt.s, b.s, lg_rl_wconst(r, bdt, n, 0).s);
  val safe = lg_rl_inst(r, "select %s %s, %s %s, %s %s", c.s, ok.s, t.s, amt.s, t.s, lg_rl_wconst(r, dt, 0, 0).s);
  val v = lg_rl_inst(r, "%s %s %s, %s", ins, t.s, a.s, safe.s);
  val out = lg_rl_wconst(r, dt, 0, 0);
  if (op == LG_OP_SHR && lg_rl_is_signed(dt)) out = lg_rl_inst(r, "ashr %s %s, %s", t.s, a.s, lg_rl_wconst(r, dt, n - 1, 0).s);
  return lg_rl_inst(r, "select %s %s, %s %s, %s %s", c.s, ok.s, t.s, v.s, t.s, out.s);
}

static val int_op(rnd *r, int32_t op, lg_dtype dt, lg_dtype bdt, val a, val b, val c, lg_lin_facts f) {
  tname t = lg_rl_wty(r, dt);
  const char *nsw = lg_rl_is_signed(dt) && f.nowrap ? " nsw" : "";
  switch (op) {
  case LG_OP_ADD: return lg_rl_inst(r, "add%s %s %s, %s", nsw, t.s, a.s, b.s);
  case LG_OP_SUB: return lg_rl_inst(r, "sub%s %s %s, %s", nsw, t.s, a.s, b.s);
  case LG_OP_MUL: return lg_rl_inst(r, "mul%s %s %s, %s", nsw, t.s, a.s, b.s);
  case LG_OP_NEG: return lg_rl_inst(r, "sub%s %s %s, %s", nsw, t.s, lg_rl_wconst(r, dt, 0, 0).s, a.s);
  case LG_OP_MULACC: {
    val m = lg_rl_inst(r, "mul %s %s, %s", t.s, a.s, b.s);
    return lg_rl_inst(r, "add %s %s, %s", t.s, m.s, c.s);
  }
  case LG_OP_IDIV:
  case LG_OP_MOD: return divide(r, op, dt, a, b, f.div_plain);
  case LG_OP_MAX: {
    val gt = lg_rl_inst(r, "icmp %s %s %s, %s", lg_rl_is_signed(dt) ? "sgt" : "ugt", t.s, a.s, b.s);
    return lg_rl_inst(r, "select %s %s, %s %s, %s %s", lg_rl_wbool(r).s, gt.s, t.s, a.s, t.s, b.s);
  }
  case LG_OP_AND: return lg_rl_inst(r, "and %s %s, %s", t.s, a.s, b.s);
  case LG_OP_OR: return lg_rl_inst(r, "or %s %s, %s", t.s, a.s, b.s);
  case LG_OP_XOR: return lg_rl_inst(r, "xor %s %s, %s", t.s, a.s, b.s);
  default: return shift(r, op, dt, bdt, a, b, f.shift_plain); /* SHL, SHR */
  }
}

/* an ALU op; dt is the operands' dtype (the result's, except for comparisons), bdt the second
 * operand's (a shift amount may have its own) */
static val op_value(rnd *r, int32_t op, lg_dtype dt, lg_dtype bdt, val a, val b, val c, lg_lin_facts f) {
  tname t = lg_rl_wty(r, dt);
  char k = lg_dtype_kind(dt);
  switch (op) {
  case LG_OP_CMPLT:
    if (k == 'f') return lg_rl_inst(r, "fcmp olt %s %s, %s", t.s, a.s, b.s);
    return lg_rl_inst(r, "icmp %s %s %s, %s", lg_rl_is_signed(dt) ? "slt" : "ult", t.s, a.s, b.s);
  case LG_OP_CMPNE: return lg_rl_inst(r, k == 'f' ? "fcmp une %s %s, %s" : "icmp ne %s %s, %s", t.s, a.s, b.s);
  case LG_OP_CMPEQ: return lg_rl_inst(r, k == 'f' ? "fcmp oeq %s %s, %s" : "icmp eq %s %s, %s", t.s, a.s, b.s);
  case LG_OP_WHERE: {
    tname bt = lg_rl_wty(r, bdt);
    return lg_rl_inst(r, "select %s %s, %s %s, %s %s", lg_rl_wbool(r).s, a.s, bt.s, b.s, bt.s, c.s);
  }
  default: break;
  }
  if (k == 'f') return float_op(r, op, dt, a, b, c);
  if (k != 'b') return int_op(r, op, dt, bdt, a, b, c, f);
  switch (op) { /* bool: MAX is OR */
  case LG_OP_AND: return lg_rl_inst(r, "and %s %s, %s", t.s, a.s, b.s);
  case LG_OP_XOR: return lg_rl_inst(r, "xor %s %s, %s", t.s, a.s, b.s);
  default: return lg_rl_inst(r, "or %s %s, %s", t.s, a.s, b.s);
  }
}

/* float -> integer: saturating, NaN is 0 */
static val float_to_int(rnd *r, lg_dtype to, lg_dtype from, val a) {
  tname tt = lg_rl_wty(r, to), ft = lg_rl_wty(r, from), ts = lg_rl_wsfx(r, to), fs = lg_rl_wsfx(r, from);
  char name[64];
  snprintf(name, sizeof name, "llvm.fpto%ci.sat.%s.%s", lg_rl_is_signed(to) ? 's' : 'u', ts.s, fs.s);
  lg_rl_declare(r, tt.s, name, ft.s);
  return lg_rl_inst(r, "call %s @%s(%s %s)", tt.s, name, ft.s, a.s);
}

/* integer (or bool) -> float dtype `to`, rounding once */
static val int_to_float(rnd *r, lg_dtype to, lg_dtype from, val a) {
  const char *conv = lg_rl_is_signed(from) ? "sitofp" : "uitofp", *ft = lg_rl_ty(from);
  if (lg_rl_sid(to) == LG_DT_FLOAT32 || is_f64(to)) {
    tname f = lg_rl_wty(r, from), t = lg_rl_wty(r, to);
    return lg_rl_inst(r, "%s %s %s to %s", conv, f.s, a.s, t.s);
  }
  if (lg_rl_is_f16(to)) /* exact in float below 2^24, and from there on float16 is inf anyway */
    return round_to(r, to, lg_rl_inst(r, "%s %s %s to float", conv, ft, a.s));
  if (lg_rl_bits(from) <= 16) { /* exact in float */
    need(r, H_BF16);
    return lg_rl_inst(r, "call float @bf16_round(float %s)", lg_rl_inst(r, "%s %s %s to float", conv, ft, a.s).s);
  }
  val d;
  if (lg_rl_bits(from) == 32) { /* exact in double */
    d = lg_rl_inst(r, "%s %s %s to double", conv, ft, a.s);
  } else {
    need(r, H_ODD_DOUBLE);
    d = lg_rl_inst(r, "call double @odd_double_%s(i64 %s)", lg_rl_is_signed(from) ? "i64" : "u64", a.s);
  }
  need(r, H_BF16_DOUBLE);
  return lg_rl_inst(r, "call float @bf16_round_double(double %s)", d.s);
}

/* float -> float: from float16 or bfloat16 (float registers) widening is exact */
static val float_to_float(rnd *r, lg_dtype to, lg_dtype from, val a) {
  tname f = lg_rl_wty(r, LG_DT_FLOAT32), d = lg_rl_wty(r, LG_DT_FLOAT64);
  if (is_f64(to)) return lg_rl_inst(r, "fpext %s %s to %s", f.s, a.s, d.s);
  if (lg_rl_sid(to) == LG_DT_FLOAT32) return is_f64(from) ? lg_rl_inst(r, "fptrunc %s %s to %s", d.s, a.s, f.s) : a;
  if (!is_f64(from)) return round_to(r, to, a);
  if (lg_rl_is_bf16(to)) {
    need(r, H_BF16_DOUBLE);
    return lg_rl_inst(r, "call float @bf16_round_double(double %s)", a.s);
  }
  need(r, H_ODD_F32); /* to float16 */
  return round_to(r, to, lg_rl_inst(r, "call float @round_odd_f32(double %s)", a.s));
}

static val cast_value(rnd *r, lg_dtype to, lg_dtype from, val a) {
  if (to == from) return a;
  char kt = lg_dtype_kind(to), kf = lg_dtype_kind(from);
  tname t = lg_rl_wty(r, to), f = lg_rl_wty(r, from);
  if (kt == 'b')
    return kf == 'f' ? lg_rl_inst(r, "fcmp une %s %s, %s", f.s, a.s, lg_rl_wconst(r, from, 0, 0.0).s)
                     : lg_rl_inst(r, "icmp ne %s %s, %s", f.s, a.s, lg_rl_wconst(r, from, 0, 0).s);
  if (kt != 'f' && kf == 'f') return float_to_int(r, to, from, a);
  if (kt == 'f') return kf == 'f' ? float_to_float(r, to, from, a) : int_to_float(r, to, from, a);
  if (lg_rl_bits(to) == lg_rl_bits(from) && kf != 'b') return a; /* the same register */
  if (kf != 'b' && lg_rl_bits(to) < lg_rl_bits(from)) return lg_rl_inst(r, "trunc %s %s to %s", f.s, a.s, t.s);
  return lg_rl_inst(r, "%s %s %s to %s", lg_rl_is_signed(from) ? "sext" : "zext", f.s, a.s, t.s);
}

/* the bits of a value as in memory: float16 and bfloat16 as their 16 bits, floats reinterpreted,
 * integers as they are */
static val to_bits(rnd *r, lg_dtype dt, val a) {
  if (lg_rl_is_bf16(dt)) return need(r, H_BF16), lg_rl_inst(r, "call i16 @float_to_bf16(float %s)", a.s);
  if (lg_rl_is_f16(dt)) return f16_bits(r, a);
  if (lg_dt_is_float(dt)) return lg_rl_inst(r, "bitcast %s %s to %s", lg_rl_wty(r, dt).s, a.s, lg_rl_wty(r, ibits(dt)).s);
  return a;
}

static val from_bits(rnd *r, lg_dtype dt, val a) {
  if (lg_rl_is_bf16(dt)) return need(r, H_BF16), lg_rl_inst(r, "call float @bf16_to_float(i16 %s)", a.s);
  if (lg_rl_is_f16(dt)) return f16_value(r, "alu", a);
  if (lg_dt_is_float(dt)) return lg_rl_inst(r, "bitcast %s %s to %s", lg_rl_wty(r, ibits(dt)).s, a.s, lg_rl_wty(r, dt).s);
  return a;
}

static val bitcast_value(rnd *r, lg_dtype to, lg_dtype from, val a) {
  if (to == from || lg_dtype_kind(to) == 'b' || lg_dtype_kind(from) == 'b') return cast_value(r, to, from, a);
  return from_bits(r, to, to_bits(r, from, a));
}

/* ---- nodes ---------------------------------------------------------------------------------------- */

int64_t lg_rl_slot_of(const rnd *r, const lg_uop *u) {
  void *v = NULL;
  lg_ptrmap_get(&r->slot, u, &v);
  return (int64_t)(intptr_t)v - 1;
}

/* whether a linearized item has a slot: CLOSE and UPDATE belong to their OPEN's and INIT's */
static int64_t slot_cb(const void *r, const lg_uop *u) { return lg_rl_slot_of(r, u); } /* for lg_lin_lanes_of */

val *lg_rl_vl(const rnd *r, const lg_uop *u) { return &r->vals[lg_rl_slot_of(r, u)]; }

bool lg_rl_is_vec(const rnd *r, const lg_uop *u) { return r->ln.vec[lg_rl_slot_of(r, u)]; }



/* A float MAX accumulates integer keys: the bits of x, its magnitude bits flipped when negative,
 * and the largest key for any NaN. Keys order as the floats do, with -0.0 below 0.0 and NaN on
 * top, so the update is an integer max, which the vectorizer knows as a reduction (the selects
 * of float_max chain each update on the last one), and the lanes of a vector of keys reduce
 * with llvm.vector.reduce.smax. */
static bool keyed(const lg_uop *u) { return lg_lin_reduce_op(u) == LG_OP_MAX && lg_dt_is_float(u->dtype); }

/* the dtype an accumulator holds: the REDUCE's, or the keys' */
lg_dtype lg_rl_acc_dt(const lg_uop *u) { return keyed(u) ? ibits(u->dtype) : u->dtype; }

/* the largest key: all bits but the sign */
static int64_t key_top(lg_dtype dt) { return (int64_t)((UINT64_C(1) << (lg_rl_bits(ibits(dt)) - 1)) - 1); }

/* the key of -inf: the bits of inf are E, so -inf's key is the sign bit and top - E: -1 - E */
static int64_t key_neg_inf(lg_dtype dt) {
  int64_t inf = is_f64(dt) ? INT64_C(0x7ff0000000000000) : 0x7f800000;
  return -1 - inf;
}

/* the key of a float's bits b, or the bits of a key b: both flip the magnitude bits of negatives */
static val key_flip(rnd *r, lg_dtype dt, val b) {
  lg_dtype kt = ibits(dt);
  tname t = lg_rl_wty(r, kt);
  val sign = lg_rl_inst(r, "ashr %s %s, %s", t.s, b.s, lg_rl_wconst(r, kt, lg_rl_bits(kt) - 1, 0).s);
  val mag = lg_rl_inst(r, "and %s %s, %s", t.s, sign.s, lg_rl_wconst(r, kt, key_top(dt), 0).s);
  return lg_rl_inst(r, "xor %s %s, %s", t.s, b.s, mag.s);
}

/* a node's value where it is used: a REDUCE's is its accumulator's, loaded there (a vector when
 * the REDUCE's value is one) */
val lg_rl_operand(rnd *r, const lg_uop *u) {
  if (u->op != LG_OP_REDUCE) return *lg_rl_vl(r, u);
  int32_t w = r->w;
  r->w = lg_rl_is_vec(r, u) ? r->ln.width : 0;
  lg_dtype dt = u->dtype, kt = ibits(dt);
  tname t = lg_rl_wty(r, lg_rl_acc_dt(u)), ft = lg_rl_wty(r, dt);
  val v = lg_rl_inst(r, "load %s, %s* %s", t.s, t.s, lg_rl_vl(r, u)->s);
  if (keyed(u)) {
    val f = lg_rl_inst(r, "bitcast %s %s to %s", t.s, key_flip(r, dt, v).s, ft.s);
    val nan = lg_rl_inst(r, "icmp eq %s %s, %s", t.s, v.s, lg_rl_wconst(r, kt, key_top(dt), 0).s);
    v = lg_rl_inst(r, "select %s %s, %s %s, %s %s", lg_rl_wbool(r).s, nan.s, ft.s, lg_rl_wconst(r, dt, 0, NAN).s, ft.s, f.s);
  }
  r->w = w;
  return v;
}

/* u as an operand of a vector op: a scalar is put in every lane */
val lg_rl_vop(rnd *r, const lg_uop *u) {
  val x = lg_rl_operand(r, u);
  return lg_rl_is_vec(r, u) ? x : splat(r, u->dtype, x);
}

/* the address of an INDEX's element: a getelementptr into the buffer (see render_llvm.h) */
val lg_rl_address(rnd *r, const lg_uop *idx, val i, bool inbounds) {
  const lg_uop *buf = idx->src[0];
  const char *mt = lg_rl_mty(lg_dtype_base(buf->dtype)), *it = lg_rl_ty(idx->src[1]->dtype);
  if (lg_dt_is_unsigned(idx->src[1]->dtype) && lg_rl_bits(idx->src[1]->dtype) < 64) {
    i = lg_rl_inst(r, "zext %s %s to i64", it, i.s);
    it = "i64";
  }
  return lg_rl_inst(r, "getelementptr %s%s, %s* %s, %s %s", inbounds ? "inbounds " : "", mt, mt, lg_rl_vl(r, buf)->s, it, i.s);
}

/* load the element at an address as a value of dtype dt */
static val load_at(rnd *r, lg_dtype dt, val p, const char *prefix) {
  const char *mt = lg_rl_mty(dt);
  int32_t align = lg_dtype_itemsize(dt);
  if (lg_rl_sid(dt) == LG_DT_BOOL)
    return lg_rl_define(r, prefix, "icmp ne i8 %s, 0", lg_rl_inst(r, "load i8, i8* %s, align 1", p.s).s);
  if (lg_rl_is_bf16(dt)) {
    need(r, H_BF16);
    val b = lg_rl_inst(r, "load i16, i16* %s, align 2", p.s);
    return lg_rl_define(r, prefix, "call float @bf16_to_float(i16 %s)", b.s);
  }
  if (lg_rl_is_f16(dt)) return f16_value(r, prefix, lg_rl_inst(r, "load i16, i16* %s, align 2", p.s));
  return lg_rl_define(r, prefix, "load %s, %s* %s, align %d", mt, mt, p.s, (int)align);
}

/* Branch around code under a scalar gate: gate_open, the gated code, gate_close. */
int32_t lg_rl_gate_open(rnd *r, val gate, const char *what, char *from, size_t size) {
  int32_t k = r->nlabel++;
  snprintf(from, size, "%s", r->block);
  lg_rl_emit(r, "br i1 %s, label %%gate%d.%s, label %%gate%d.done", gate.s, (int)k, what, (int)k);
  block(r, "gate", k, what[0] == 'l' ? ".load" : ".store");
  return k;
}

void lg_rl_gate_close(rnd *r, int32_t k) {
  lg_rl_emit(r, "br label %%gate%d.done", (int)k);
  block(r, "gate", k, ".done");
}

static void load(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u, *idx = u->src[0];
  val i = lg_rl_operand(r, idx->src[1]);
  if (idx->nsrc < 3) {
    *lg_rl_vl(r, u) = load_at(r, u->dtype, lg_rl_address(r, idx, i, true), "val");
    return;
  }
  /* gated: the address is only formed and read under the gate */
  val gate = lg_rl_operand(r, idx->src[2]), alt = u->nsrc > 1 ? lg_rl_operand(r, u->src[1]) : lg_rl_literal(u->dtype, 0, 0.0);
  char from[32];
  int32_t k = lg_rl_gate_open(r, gate, "load", from, sizeof from);
  val v = load_at(r, u->dtype, lg_rl_address(r, idx, i, true), "alu");
  lg_rl_gate_close(r, k);
  *lg_rl_vl(r, u) =
      lg_rl_define(r, "val", "phi %s [ %s, %%gate%d.load ], [ %s, %%%s ]", lg_rl_ty(u->dtype), v.s, (int)k, alt.s, from);
}

/* the value of a STORE as its element in memory */
val lg_rl_to_memory(rnd *r, lg_dtype dt, val v) {
  if (lg_rl_sid(dt) == LG_DT_BOOL) return lg_rl_inst(r, "zext %s %s to %s", lg_rl_wbool(r).s, v.s, lg_rl_wty(r, LG_DT_INT8).s);
  if (lg_rl_is_bf16(dt)) return need(r, H_BF16), lg_rl_inst(r, "call i16 @float_to_bf16(float %s)", v.s);
  if (lg_rl_is_f16(dt)) return f16_bits(r, v);
  return v;
}

static void store(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u, *idx = u->src[0];
  lg_dtype dt = u->src[1]->dtype;
  val v = lg_rl_to_memory(r, dt, lg_rl_operand(r, u->src[1])), i = lg_rl_operand(r, idx->src[1]);
  int32_t k = -1;
  char from[32];
  if (idx->nsrc == 3) k = lg_rl_gate_open(r, lg_rl_operand(r, idx->src[2]), "store", from, sizeof from);
  const char *mt = lg_rl_mty(dt);
  val p = lg_rl_address(r, idx, i, true);
  lg_rl_emit(r, "store %s %s, %s* %s, align %d", mt, v.s, mt, p.s, (int)lg_dtype_itemsize(dt));
  if (k >= 0) lg_rl_gate_close(r, k);
}

/* ALU, CAST, BITCAST (of vectors: scalar operands put in every lane) */
static void value(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u;
  val (*get)(rnd *, const lg_uop *) = r->w ? lg_rl_vop : lg_rl_operand;
  val a = get(r, u->src[0]), b = u->nsrc > 1 ? get(r, u->src[1]) : a, c = u->nsrc > 2 ? get(r, u->src[2]) : a;
  lg_dtype odt = lg_op_has(u->op, LG_OPF_CMP) ? u->src[0]->dtype : u->dtype;
  *lg_rl_vl(r, u) = u->op == LG_OP_CAST      ? cast_value(r, u->dtype, u->src[0]->dtype, a)
                    : u->op == LG_OP_BITCAST ? bitcast_value(r, u->dtype, u->src[0]->dtype, a)
                                             : op_value(r, u->op, odt, u->nsrc > 1 ? u->src[1]->dtype : odt, a, b, c,
                                                        lg_lin_facts_of(u));
}

/* a new accumulator of type t: an alloca in the entry block */
void lg_rl_new_acc(rnd *r, const lg_uop *u, const char *t) {
  val *acc = lg_rl_vl(r, u);
  snprintf(acc->s, sizeof acc->s, "%%acc%d", r->nname++);
  lg_strbuf_put(&r->allocas, "  %s = alloca %s\n", acc->s, t);
}

static void reduce_init(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u;
  lg_dtype dt = u->dtype;
  int32_t op = lg_lin_reduce_op(u);
  int64_t lo = 0, hi; /* MAX starts at the lowest value: -inf, INT32_MIN, 0 (uint64 too: left as is) */
  if (op == LG_OP_MAX && !lg_dt_is_float(dt)) lg_dt_int_range(dt, &lo, &hi);
  tname t = lg_rl_wty(r, lg_rl_acc_dt(u));
  val id = keyed(u)            ? lg_rl_wconst(r, ibits(dt), key_neg_inf(dt), 0)
           : op == LG_OP_MAX ? lg_rl_wconst(r, dt, lo, -INFINITY)
                             : lg_rl_wconst(r, dt, op == LG_OP_MUL, op == LG_OP_MUL);
  lg_rl_new_acc(r, u, t.s);
  lg_rl_emit(r, "store %s %s, %s* %s", t.s, id.s, t.s, lg_rl_vl(r, u)->s);
}

static int32_t users_of(const void *r, const lg_uop *u) { return ((const rnd *)r)->users[lg_rl_slot_of(r, u)]; }

static val lane_operand(rnd *r, const lg_uop *u) { return r->w ? lg_rl_vop(r, u) : lg_rl_operand(r, u); }

static void reduce_update(rnd *r, const lg_lin_inst *in) {
  lg_uop *u = in->u;
  lg_dtype dt = u->dtype, kt = ibits(dt);
  tname t = lg_rl_wty(r, lg_rl_acc_dt(u)), ft = lg_rl_wty(r, dt), c = lg_rl_wbool(r);
  val cur = lg_rl_inst(r, "load %s, %s* %s", t.s, t.s, lg_rl_vl(r, u)->s), v;
  const lg_uop *terms[LG_LIN_FMA_TERMS];
  bool fused[LG_LIN_FMA_TERMS];
  int32_t n = lg_lin_fma_terms(u, users_of, r, terms, fused);
  if (n > 0) { /* fused multiply-adds, as render_c (linearize.h) */
    tname s = lg_rl_wsfx(r, dt);
    char name[40], args[80];
    snprintf(name, sizeof name, "llvm.fma.%s", s.s);
    snprintf(args, sizeof args, "%s, %s, %s", t.s, t.s, t.s);
    lg_rl_declare(r, t.s, name, args);
    v = cur;
    for (int32_t i = 0; i < n; i++) {
      if (fused[i]) {
        val a = lane_operand(r, terms[i]->src[0]), b = lane_operand(r, terms[i]->src[1]);
        v = lg_rl_inst(r, "call %s @%s(%s %s, %s %s, %s %s)", t.s, name, t.s, a.s, t.s, b.s, t.s, v.s);
      } else {
        v = lg_rl_inst(r, "fadd %s %s, %s", t.s, v.s, lane_operand(r, terms[i]).s);
      }
    }
    lg_rl_emit(r, "store %s %s, %s* %s", t.s, v.s, t.s, lg_rl_vl(r, u)->s);
    return;
  }
  val x = lane_operand(r, u->src[0]);
  if (keyed(u)) {
    val kx = key_flip(r, dt, lg_rl_inst(r, "bitcast %s %s to %s", ft.s, x.s, t.s)),
        nan = lg_rl_inst(r, "fcmp uno %s %s, %s", ft.s, x.s, x.s);
    kx = lg_rl_inst(r, "select %s %s, %s %s, %s %s", c.s, nan.s, t.s, lg_rl_wconst(r, kt, key_top(dt), 0).s, t.s, kx.s);
    val gt = lg_rl_inst(r, "icmp sgt %s %s, %s", t.s, cur.s, kx.s);
    v = lg_rl_inst(r, "select %s %s, %s %s, %s %s", c.s, gt.s, t.s, cur.s, t.s, kx.s);
  } else {
    v = op_value(r, lg_lin_reduce_op(u), dt, dt, cur, x, x, (lg_lin_facts){0});
  }
  lg_rl_emit(r, "store %s %s, %s* %s", t.s, v.s, t.s, lg_rl_vl(r, u)->s);
}

/* The split loop's part on this core, as render_c computes it: n * core_id / ncores (which = 0)
 * or n * (core_id + 1) / ncores (which = 1) in int64, n widened as C converts it. */
static val core_bound(rnd *r, lg_dtype dt, val n, int which) {
  const char *t = lg_rl_ty(dt);
  bool wide = lg_rl_bits(dt) == 64;
  val n64 = wide ? n : lg_rl_inst(r, "%s %s %s to i64", lg_rl_is_signed(dt) ? "sext" : "zext", t, n.s);
  val id = which ? lg_rl_inst(r, "add nsw i32 %%core_id, 1") : lg_rl_text("%core_id");
  val id64 = lg_rl_inst(r, "sext i32 %s to i64", id.s), cores = lg_rl_inst(r, "sext i32 %%ncores to i64");
  val b = lg_rl_inst(r, "sdiv i64 %s, %s", lg_rl_inst(r, "mul i64 %s, %s", n64.s, id64.s).s, cores.s);
  return wide ? b : lg_rl_inst(r, "trunc i64 %s to %s", b.s, t);
}

/* loop<k>: ridx = phi [start, before], [ridx + 1, latch]; on to the body while ridx < end. start
 * is 0 and end the RANGE's, except in the split loop (this core's part). */
static void loop_open(rnd *r, const lg_lin_inst *in, bool split) {
  lg_uop *u = in->u;
  const char *t = lg_rl_ty(u->dtype);
  val end = lg_rl_operand(r, u->src[0]), start = lg_rl_text("0");
  if (split) start = core_bound(r, u->dtype, end, 0), end = core_bound(r, u->dtype, end, 1);
  loop *l = &r->loops[r->nloops++];
  l->label = r->nlabel++;
  snprintf(l->ridx.s, sizeof l->ridx.s, "%%ridx%d", r->nname++);
  char from[32];
  snprintf(from, sizeof from, "%s", r->block);
  lg_rl_emit(r, "br label %%loop%d", (int)l->label);
  block(r, "loop", l->label, "");
  lg_rl_emit(r, "%s = phi %s [ %s, %%%s ], [ %s.next, %%loop%d.latch ]", l->ridx.s, t, start.s, from, l->ridx.s,
             (int)l->label);
  val more = lg_rl_inst(r, "icmp %s %s %s, %s", lg_rl_is_signed(u->dtype) ? "slt" : "ult", t, l->ridx.s, end.s);
  lg_rl_emit(r, "br i1 %s, label %%loop%d.body, label %%loop%d.exit", more.s, (int)l->label, (int)l->label);
  block(r, "loop", l->label, ".body");
  *lg_rl_vl(r, u) = l->ridx;
}

static void loop_close(rnd *r, const lg_lin_inst *in) {
  loop *l = &r->loops[--r->nloops];
  const char *t = lg_rl_ty(in->u->dtype);
  lg_rl_emit(r, "br label %%loop%d.latch", (int)l->label);
  block(r, "loop", l->label, ".latch");
  lg_rl_emit(r, "%s.next = add nuw nsw %s %s, 1", l->ridx.s, t, l->ridx.s); /* ridx < end: no wrap */
  lg_rl_emit(r, "br label %%loop%d", (int)l->label);
  block(r, "loop", l->label, ".exit");
}

static void walk(rnd *r) {
  for (int64_t k = 0; k < r->lin.n; k++) {
    const lg_lin_inst *in = &r->lin.inst[k];
    lg_uop *u = in->u;
    bool acc = in->kind == LG_LIN_INIT || in->kind == LG_LIN_UPDATE, vacc = acc && r->ln.vacc[lg_rl_slot_of(r, u)];
    r->w = vacc || (in->kind == LG_LIN_NODE && lg_rl_is_vec(r, u)) ? r->ln.width : 0;
    switch (in->kind) {
    case LG_LIN_OPEN: loop_open(r, in, k == r->split_open); break;
    case LG_LIN_CLOSE:
      loop_close(r, in);
      for (int64_t i = 0; i < r->ln.nfinishing; i++)
        if (r->ln.finish_at[lg_rl_slot_of(r, r->ln.finishing[i])] == u) lg_rl_reduce_finish(r, r->ln.finishing[i]);
      break;
    case LG_LIN_INIT: reduce_init(r, in); break;
    case LG_LIN_UPDATE:
      reduce_update(r, in);
      if (vacc && !lg_rl_is_vec(r, u) && !r->ln.finish_at[lg_rl_slot_of(r, u)]) lg_rl_reduce_finish(r, u);
      break;
    default:
      switch (u->op) {
      case LG_OP_CONST: *lg_rl_vl(r, u) = lg_rl_literal(u->dtype, u->arg.i, u->arg.f); break;
      case LG_OP_RANGE: lg_rl_lanes_value(r, in); break;
      case LG_OP_LOAD: (r->w ? lg_rl_vload : load)(r, in); break;
      case LG_OP_STORE: (r->w ? lg_rl_vstore : store)(r, in); break;
      case LG_OP_DEFINE_GLOBAL: /* named before the walk */
      case LG_OP_DEFINE_VAR:
      case LG_OP_INDEX: /* formed by its LOADs and STOREs */
      case LG_OP_END:
      case LG_OP_GROUP:
      case LG_OP_SINK: break;
      default: value(r, in); break;
      }
    }
  }
}

/* ---- checks, names ------------------------------------------------------------------------------- */

static lg_status check_node(rnd *r, const lg_uop *u) {
  char msg[256];
  return lg_lin_check_node(u, "the LLVM renderer", msg, sizeof msg) ? lg_rl_fail(r, u, "%s", msg) : LG_OK;
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

/* slots, checks, parameters (sorted, named) */
static lg_status prepass(rnd *r) {
  for (int64_t k = 0; k < r->lin.n; k++)
    if (lg_lin_has_slot(r->lin.inst[k].kind) && !lg_ptrmap_put(&r->slot, r->lin.inst[k].u, (void *)(intptr_t)++r->nslots))
      return lg_ctx_fail(r->ctx, LG_ERR_NOMEM, "render LLVM: out of memory");
  r->vals = calloc((size_t)r->nslots + 1, sizeof *r->vals);
  r->globals = malloc(((size_t)r->nslots + 1) * sizeof *r->globals);
  r->vars = malloc(((size_t)r->nslots + 1) * sizeof *r->vars);
  r->loops = malloc(((size_t)r->nslots + 1) * sizeof *r->loops);
  r->users = calloc((size_t)r->nslots + 1, sizeof *r->users);
  if (!r->vals || !r->globals || !r->vars || !r->loops || !r->users)
    return lg_ctx_fail(r->ctx, LG_ERR_NOMEM, "render LLVM: out of memory");
  for (int64_t k = 0; k < r->lin.n; k++) {
    lg_uop *u = r->lin.inst[k].u;
    if (!lg_lin_has_slot(r->lin.inst[k].kind)) continue;
    for (int32_t i = 0; i < u->nsrc; i++) r->users[lg_rl_slot_of(r, u->src[i])]++;
    lg_status st = check_node(r, u);
    if (st) return st;
    if (u->op == LG_OP_DEFINE_GLOBAL) r->globals[r->nglobals++] = u;
    if (u->op == LG_OP_DEFINE_VAR) r->vars[r->nvars++] = u;
    if (u->op == LG_OP_STORE && !lg_ptrmap_put(&r->stored, u->src[0]->src[0], NULL))
      return lg_ctx_fail(r->ctx, LG_ERR_NOMEM, "render LLVM: out of memory");
  }
  qsort(r->globals, (size_t)r->nglobals, sizeof *r->globals, by_slot);
  qsort(r->vars, (size_t)r->nvars, sizeof *r->vars, by_name);
  for (int64_t i = 0; i < r->nglobals; i++) {
    if (i > 0 && r->globals[i]->arg.i == r->globals[i - 1]->arg.i)
      return lg_rl_fail(r, r->globals[i], "another DEFINE_GLOBAL has the same slot with another dtype");
    snprintf(lg_rl_vl(r, r->globals[i])->s, sizeof(val), "%%data%lld", (long long)r->globals[i]->arg.i);
  }
  for (int64_t i = 0; i < r->nvars; i++) {
    const char *s = r->vars[i]->arg.s;
    if (i > 0 && strcmp(s, r->vars[i - 1]->arg.s) == 0)
      return lg_rl_fail(r, r->vars[i], "another DEFINE_VAR has the same name (its place in ints is ambiguous)");
    if (is_ident(s) && strlen(s) < 32)
      snprintf(lg_rl_vl(r, r->vars[i])->s, sizeof(val), "%%var_%s", s);
    else
      snprintf(lg_rl_vl(r, r->vars[i])->s, sizeof(val), "%%var%lld", (long long)i);
  }
  return lg_lin_lanes_of(r->ctx, &r->lin, r->nslots, slot_cb, r, "render LLVM", &r->ln);
}

/* The entry reads the arguments and calls the body (inlined), whose buffer parameters do not
 * alias. */
static lg_status assemble(rnd *r, const char *name, char **src) {
  lg_strbuf out = {0}, params = {0}, args = {0};
  lg_strbuf_put(&out, "; kernel %s for the LLVM device (devices/llvm/render_llvm.c)\n", name);
  if (r->pre.len) lg_strbuf_put(&out, "%s\n", r->pre.p);
  lg_strbuf_put(&out, "; for the launcher: %s\n@%s_split = constant [2 x i64] [i64 %lld, i64 %lld]\n\n",
                r->split_open >= 0 ? "the split loop's iterations, the work of one" : "nothing is split over the cores",
                name, (long long)r->split_trips, (long long)r->split_work);
  lg_strbuf_put(&out, "define void @%s(i8** %%bufs, i64* %%ints, i32 %%core_id, i32 %%ncores) nounwind {\nentry:\n", name);
  if (r->split_open < 0) /* core 0 does it all */
    lg_strbuf_put(&out, "  %%first = icmp eq i32 %%core_id, 0\n  br i1 %%first, label %%run, label %%idle\n"
                        "idle:\n  ret void\nrun:\n");
  lg_strbuf_put(&params, "i32 %%core_id, i32 %%ncores");
  lg_strbuf_put(&args, "i32 %%core_id, i32 %%ncores");
  for (int64_t i = 0; i < r->nglobals; i++) {
    const lg_uop *g = r->globals[i];
    long long s = (long long)g->arg.i;
    const char *t = lg_rl_mty(lg_dtype_base(g->dtype)), *ro = lg_ptrmap_get(&r->stored, g, NULL) ? "" : " readonly";
    lg_strbuf_put(&out, "  %%bufp%lld = getelementptr inbounds i8*, i8** %%bufs, i64 %lld\n", s, s);
    lg_strbuf_put(&out, "  %%buf%lld = load i8*, i8** %%bufp%lld, align 8\n", s, s);
    lg_strbuf_put(&out, "  %%arg%lld = bitcast i8* %%buf%lld to %s*\n", s, s, t);
    lg_strbuf_put(&params, ", %s* noalias%s align 64 %s", t, ro, lg_rl_vl(r, g)->s);
    lg_strbuf_put(&args, ", %s* %%arg%lld", t, s);
  }
  for (int64_t i = 0; i < r->nvars; i++) {
    const char *t = lg_rl_ty(r->vars[i]->dtype);
    lg_strbuf_put(&out, "  %%intp%lld = getelementptr inbounds i64, i64* %%ints, i64 %lld\n", (long long)i, (long long)i);
    lg_strbuf_put(&out, "  %%int%lld = load i64, i64* %%intp%lld, align 8\n", (long long)i, (long long)i);
    if (lg_rl_bits(r->vars[i]->dtype) < 64)
      lg_strbuf_put(&out, "  %%iarg%lld = trunc i64 %%int%lld to %s\n", (long long)i, (long long)i, t);
    lg_strbuf_put(&params, ", %s %s", t, lg_rl_vl(r, r->vars[i])->s);
    lg_strbuf_put(&args, ", %s %%%s%lld", t, lg_rl_bits(r->vars[i]->dtype) < 64 ? "iarg" : "int",
                  (long long)i);
  }
  lg_strbuf_put(&out, "  call void @%s.body(%s)\n  ret void\n}\n\n", name, args.p ? args.p : "");
  lg_strbuf_put(&out, "define internal void @%s.body(%s) alwaysinline nounwind {\nentry:\n%s%s  ret void\n}\n", name,
                params.p ? params.p : "", r->allocas.p ? r->allocas.p : "", r->body.p ? r->body.p : "");
  bool oom = out.oom || params.oom || args.oom || r->oom || r->pre.oom || r->allocas.oom || r->body.oom;
  free(params.p), free(args.p);
  if (oom) {
    free(out.p);
    return lg_ctx_fail(r->ctx, LG_ERR_NOMEM, "render LLVM: out of memory");
  }
  *src = out.p;
  return LG_OK;
}

lg_status lg_render_llvm(lg_ctx *ctx, lg_uop *sink, const char *name, char **src) {
  *src = NULL;
  if (!is_ident(name))
    return lg_ctx_fail(ctx, LG_ERR_ARG, "render LLVM: the kernel name '%s' is not a C identifier", name ? name : "(null)");
  lg_status st = lg_uop_verify(ctx, sink);
  if (st) return st;
  rnd r = {.ctx = ctx, .block = "entry"};
  st = lg_linearize(ctx, sink, &r.lin);
  if (!st) st = prepass(&r);
  if (!st) st = lg_lin_split(r.ctx, &r.lin, &r.split_open, &r.split_trips, &r.split_work);
  if (!st) walk(&r), st = assemble(&r, name, src);
  free(r.vals), free(r.globals), free(r.vars), free(r.loops), free(r.pre.p), free(r.allocas.p), free(r.body.p);
  lg_lin_lanes_free(&r.ln), free(r.users);
  lg_ptrmap_free(&r.slot);
  lg_ptrmap_free(&r.stored);
  lg_linear_free(&r.lin);
  return st;
}
