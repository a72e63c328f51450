/* test_uop.c: nodes (interning, release of big graphs, CONST canonicalisation), range analysis,
 * the spec checker and the text printer. */
#include <malloc.h>
#include <math.h>
#include <stdlib.h>

#include "ctest.h"
#include "internal.h"

static lg_uop *node(lg_ctx *ctx, int32_t op, lg_dtype dt, lg_uop *a, lg_uop *b, lg_uop *c) {
  lg_uop *src[3] = {a, b, c}, *u = NULL;
  int32_t n = c ? 3 : b ? 2 : a ? 1 : 0;
  lg_uop_new(ctx, op, dt, src, n, NULL, &u);
  return u;
}

/* a new node holding its sources: the caller's references to them are dropped */
static lg_uop *take(lg_ctx *ctx, int32_t op, lg_dtype dt, lg_uop *a, lg_uop *b, lg_uop *c) {
  lg_uop *u = node(ctx, op, dt, a, b, c);
  lg_uop_release(a), lg_uop_release(b), lg_uop_release(c);
  return u;
}

static lg_uop *cint(lg_ctx *ctx, lg_dtype dt, int64_t v) {
  lg_uop *u = NULL;
  lg_uop_const_int(ctx, dt, v, &u);
  return u;
}

static lg_uop *cfloat(lg_ctx *ctx, lg_dtype dt, double v) {
  lg_uop *u = NULL;
  lg_uop_const_float(ctx, dt, v, &u);
  return u;
}

static lg_uop *var(lg_ctx *ctx, lg_dtype dt, const char *name, int64_t lo, int64_t hi) {
  int64_t ints[2] = {lo, hi};
  lg_arg a = {.kind = LG_ARG_STR_INTS, .n = 2, .s = name, .ints = ints};
  lg_uop *u = NULL;
  lg_uop_new(ctx, LG_OP_DEFINE_VAR, dt, NULL, 0, &a, &u);
  return u;
}

static lg_uop *with_arg(lg_ctx *ctx, int32_t op, lg_dtype dt, lg_uop *a, const lg_arg *arg) {
  lg_uop *u = NULL;
  lg_uop_new(ctx, op, dt, &a, a ? 1 : 0, arg, &u);
  return u;
}

/* ---- interning and memory ------------------------------------------------------------------- */

CTEST(uop_interning) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_uop *i = var(ctx, LG_DT_INT32, "i", 0, 9), *i2 = var(ctx, LG_DT_INT32, "i", 0, 9), *j = var(ctx, LG_DT_INT32, "i", 0, 8);
  REQUIRE(i && i2 && j);
  CHECK(i == i2);
  CHECK(i != j);
  CHECK_INT(lg_uop_refcount(i), 2);
  lg_uop *c = cint(ctx, LG_DT_INT32, 4), *a = node(ctx, LG_OP_ADD, LG_DT_INT32, i, c, NULL),
         *b = node(ctx, LG_OP_ADD, LG_DT_INT32, i, c, NULL), *d = node(ctx, LG_OP_ADD, LG_DT_INT32, c, i, NULL);
  CHECK(a == b);
  CHECK(a != d); /* interning is structural: no canonical order of sources */
  CHECK_INT(lg_uop_refcount(i), 4); /* i, i2, a (= b) and d */
  lg_uop *z = cfloat(ctx, LG_DT_FLOAT32, 0.0), *nz = cfloat(ctx, LG_DT_FLOAT32, -0.0), *z2 = cfloat(ctx, LG_DT_FLOAT32, 0.0);
  CHECK(z != nz);
  CHECK(z == z2);
  lg_uop *n1 = cfloat(ctx, LG_DT_FLOAT32, NAN), *n2 = cfloat(ctx, LG_DT_FLOAT32, -NAN);
  CHECK(n1 == n2); /* one NaN */
  lg_uop *zi = cint(ctx, LG_DT_FLOAT32, 0); /* an integer arg on a float CONST becomes the float */
  CHECK(zi == z);
  lg_uop *all[] = {i, i2, j, c, a, b, d, z, nz, z2, n1, n2, zi};
  for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) lg_uop_release(all[k]);
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  CHECK_INT(lg_ctx_live_bytes(ctx), 0);
  lg_ctx_free(ctx);
}

static size_t heap_in_use(void) {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

enum { BIG = 1000000 };

/* A chain a million deep: x + 1 + 1 + ... */
static lg_uop *chain(lg_ctx *ctx, int64_t n) {
  lg_uop *one = cint(ctx, LG_DT_INT64, 1), *x = var(ctx, LG_DT_INT64, "x", 0, 10);
  for (int64_t k = 0; k < n && x; k++) x = take(ctx, LG_OP_ADD, LG_DT_INT64, x, lg_uop_retain(one), NULL);
  lg_uop_release(one);
  return x;
}

/* A balanced tree over n distinct leaves, as a SINK of its top nodes */
static lg_uop *wide(lg_ctx *ctx, int64_t n) {
  lg_uop **level = malloc((size_t)n * sizeof *level);
  if (!level) return NULL;
  for (int64_t k = 0; k < n; k++) level[k] = cint(ctx, LG_DT_INT64, k);
  while (n > 4) {
    for (int64_t k = 0; k < n / 2; k++) level[k] = take(ctx, LG_OP_MUL, LG_DT_INT64, level[2 * k], level[2 * k + 1], NULL);
    if (n % 2) level[n / 2] = level[n - 1];
    n = (n + 1) / 2;
  }
  lg_uop *s = NULL;
  lg_uop_new(ctx, LG_OP_SINK, LG_DT_VOID, level, (int32_t)n, NULL, &s);
  for (int64_t k = 0; k < n; k++) lg_uop_release(level[k]);
  free(level);
  return s;
}

CTEST(uop_release_million_nodes) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  size_t heap = 0;
  for (int round = 0; round < 2; round++) {
    /* round 0 grows the intern table to its final size; round 1 must give back all it takes */
    if (round == 1) heap = heap_in_use();
    lg_uop *c = chain(ctx, BIG);
    REQUIRE(c);
    CHECK_INT(lg_ctx_live_nodes(ctx), BIG + 2);
    CHECK_INT(lg_uop_size(c), BIG + 2);
    lg_uop_release(c);
    CHECK_INT(lg_ctx_live_nodes(ctx), 0);
    lg_uop *w = wide(ctx, BIG);
    REQUIRE(w);
    CHECK(lg_ctx_live_nodes(ctx) > BIG);
    lg_uop_release(w);
    CHECK_INT(lg_ctx_live_nodes(ctx), 0);
    CHECK_INT(lg_ctx_live_bytes(ctx), 0);
  }
  size_t after = heap_in_use();
  CHECK_MSG(after <= heap + 8192, "heap in use grew from %zu to %zu bytes", heap, after);
  lg_ctx_free(ctx);
}

static int64_t const_i(lg_ctx *ctx, lg_dtype dt, int64_t v) {
  lg_uop *u = cint(ctx, dt, v);
  int64_t r = u ? lg_uop_arg(u)->i : -12345;
  lg_uop_release(u);
  return r;
}

static double const_f(lg_ctx *ctx, lg_dtype dt, double v) {
  lg_uop *u = cfloat(ctx, dt, v);
  double r = u ? lg_uop_arg(u)->f : -12345;
  lg_uop_release(u);
  return r;
}

CTEST(const_canonicalisation) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_uop *u;
  CHECK_INT(const_i(ctx, LG_DT_INT8, 300), 44);
  CHECK_INT(const_i(ctx, LG_DT_INT8, 200), -56);
  CHECK_INT(const_i(ctx, LG_DT_UINT8, -1), 255);
  CHECK_INT(const_i(ctx, LG_DT_UINT32, -1), 4294967295);
  CHECK_INT(const_i(ctx, LG_DT_UINT64, -1), -1);
  CHECK_INT(const_i(ctx, LG_DT_BOOL, 5), 1);
  CHECK_INT(lg_uop_arg(u = cfloat(ctx, LG_DT_INT32, 2.9))->i, 2);
  lg_uop_release(u);
  CHECK(cint(ctx, LG_DT_INT8, 300) == (u = cint(ctx, LG_DT_INT8, 44)));
  lg_uop_release(u), lg_uop_release(u);
  CHECK(const_f(ctx, LG_DT_FLOAT16, 0.1) == 0.0999755859375);
  CHECK(const_f(ctx, LG_DT_BFLOAT16, 0.1) == 0.10009765625);
  CHECK(const_f(ctx, LG_DT_FLOAT32, 0.1) == (double)0.1f);
  CHECK(const_f(ctx, LG_DT_FLOAT16, 1e6) == INFINITY);
  CHECK(const_f(ctx, LG_DT_FLOAT16, 1e-8) == 0.0);
  CHECK(const_f(ctx, LG_DT_FLOAT16, 3e-8) == 0x1p-24);
  CHECK(signbit(const_f(ctx, LG_DT_BFLOAT16, -1e-300)));
  CHECK(lg_uop_const_float(ctx, LG_DT_INT32, NAN, &u) == LG_ERR_ARG && strstr(lg_ctx_error(ctx), "nan"));
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ctx_free(ctx);
}

/* ---- range analysis ------------------------------------------------------------------------- */

#define CHECK_BOUNDS(u, lo, hi)                                                               \
  do {                                                                                        \
    lg_uop *b_ = (u);                                                                         \
    int64_t l_ = 0, h_ = 0;                                                                   \
    CHECK_MSG(b_ && lg_uop_bounds(b_, &l_, &h_) && l_ == (lo) && h_ == (hi),                  \
              "%s: bounds [%lld, %lld], expected [%lld, %lld]", #u, (long long)l_, (long long)h_, \
              (long long)(lo), (long long)(hi));                                              \
    lg_uop_release(b_);                                                                       \
  } while (0)

CTEST(vrange_cases) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  const lg_dtype I = LG_DT_INT32, B = LG_DT_BOOL;
  lg_uop *i = var(ctx, I, "i", 0, 9), *s = var(ctx, I, "s", -5, 5), *neg = var(ctx, I, "n", -3, -1);
  lg_uop *big = var(ctx, I, "big", 0, 100000);
  REQUIRE(i && s && neg && big);
#define C(v) cint(ctx, I, v)
  CHECK_BOUNDS(lg_uop_retain(i), 0, 9);
  CHECK_BOUNDS(C(7), 7, 7);
  CHECK_BOUNDS(take(ctx, LG_OP_MUL, I, lg_uop_retain(i), C(4), NULL), 0, 36);
  CHECK_BOUNDS(take(ctx, LG_OP_MUL, I, lg_uop_retain(i), lg_uop_retain(s), NULL), -45, 45);
  CHECK_BOUNDS(take(ctx, LG_OP_ADD, I, lg_uop_retain(i), C(-3), NULL), -3, 6);
  CHECK_BOUNDS(take(ctx, LG_OP_SUB, I, lg_uop_retain(i), lg_uop_retain(s), NULL), -5, 14);
  CHECK_BOUNDS(take(ctx, LG_OP_NEG, I, lg_uop_retain(i), NULL, NULL), -9, 0);
  CHECK_BOUNDS(take(ctx, LG_OP_MAX, I, lg_uop_retain(i), C(5), NULL), 5, 9);
  CHECK_BOUNDS(take(ctx, LG_OP_RANGE, I, C(10), NULL, NULL), 0, 9);
  CHECK_BOUNDS(take(ctx, LG_OP_RANGE, I, C(0), NULL, NULL), 0, 0);
  CHECK_BOUNDS(take(ctx, LG_OP_RANGE, I, lg_uop_retain(i), NULL, NULL), 0, 8);
  /* division and remainder truncate toward zero */
  CHECK_BOUNDS(take(ctx, LG_OP_IDIV, I, lg_uop_retain(i), C(2), NULL), 0, 4);
  CHECK_BOUNDS(take(ctx, LG_OP_IDIV, I, lg_uop_retain(s), C(2), NULL), -2, 2);
  CHECK_BOUNDS(take(ctx, LG_OP_IDIV, I, lg_uop_retain(i), lg_uop_retain(neg), NULL), -9, 0);
  CHECK_BOUNDS(take(ctx, LG_OP_IDIV, I, lg_uop_retain(i), lg_uop_retain(s), NULL), INT32_MIN, INT32_MAX);
  CHECK_BOUNDS(take(ctx, LG_OP_MOD, I, lg_uop_retain(i), C(4), NULL), 0, 3);
  CHECK_BOUNDS(take(ctx, LG_OP_MOD, I, lg_uop_retain(i), C(16), NULL), 0, 9);
  CHECK_BOUNDS(take(ctx, LG_OP_MOD, I, lg_uop_retain(s), C(3), NULL), -2, 2);
  CHECK_BOUNDS(take(ctx, LG_OP_MOD, I, lg_uop_retain(i), lg_uop_retain(neg), NULL), 0, 2);
  CHECK_BOUNDS(take(ctx, LG_OP_MOD, I, var(ctx, I, "a", 1, 2), var(ctx, I, "d", 1, 3), NULL), 0, 2);
  CHECK_BOUNDS(take(ctx, LG_OP_MOD, I, var(ctx, I, "a", -2, 1), var(ctx, I, "d", 3, 4), NULL), -2, 1);
  /* bit operations and shifts */
  CHECK_BOUNDS(take(ctx, LG_OP_AND, I, lg_uop_retain(big), C(7), NULL), 0, 7);
  CHECK_BOUNDS(take(ctx, LG_OP_AND, I, lg_uop_retain(s), C(7), NULL), 0, 7);
  CHECK_BOUNDS(take(ctx, LG_OP_OR, I, lg_uop_retain(i), C(16), NULL), 16, 31);
  CHECK_BOUNDS(take(ctx, LG_OP_SHL, I, lg_uop_retain(i), C(2), NULL), 0, 36);
  CHECK_BOUNDS(take(ctx, LG_OP_SHR, I, lg_uop_retain(s), C(1), NULL), -3, 2);
  /* overflow of the dtype: the value wraps, so anything is possible */
  CHECK_BOUNDS(take(ctx, LG_OP_MUL, I, lg_uop_retain(big), lg_uop_retain(big), NULL), INT32_MIN, INT32_MAX);
  CHECK_BOUNDS(take(ctx, LG_OP_SHL, I, lg_uop_retain(big), C(20), NULL), INT32_MIN, INT32_MAX);
  CHECK_BOUNDS(take(ctx, LG_OP_ADD, LG_DT_INT8, cint(ctx, LG_DT_INT8, 100), cint(ctx, LG_DT_INT8, 100), NULL), -128, 127);
  CHECK_BOUNDS(take(ctx, LG_OP_SUB, LG_DT_UINT32, cint(ctx, LG_DT_UINT32, 0), cint(ctx, LG_DT_UINT32, 1), NULL), 0, UINT32_MAX);
  lg_uop *l = var(ctx, LG_DT_INT64, "l", 0, INT64_MAX);
  CHECK_BOUNDS(take(ctx, LG_OP_ADD, LG_DT_INT64, l, cint(ctx, LG_DT_INT64, 1), NULL), INT64_MIN, INT64_MAX);
  /* comparisons are decided by disjoint bounds; WHERE takes the decided branch or both */
  CHECK_BOUNDS(take(ctx, LG_OP_CMPLT, B, lg_uop_retain(i), C(10), NULL), 1, 1);
  CHECK_BOUNDS(take(ctx, LG_OP_CMPLT, B, lg_uop_retain(i), C(5), NULL), 0, 1);
  CHECK_BOUNDS(take(ctx, LG_OP_CMPLT, B, lg_uop_retain(i), C(0), NULL), 0, 0);
  CHECK_BOUNDS(take(ctx, LG_OP_CMPNE, B, lg_uop_retain(i), lg_uop_retain(neg), NULL), 1, 1);
  CHECK_BOUNDS(take(ctx, LG_OP_CMPEQ, B, lg_uop_retain(i), lg_uop_retain(neg), NULL), 0, 0);
  CHECK_BOUNDS(take(ctx, LG_OP_WHERE, I, take(ctx, LG_OP_CMPLT, B, lg_uop_retain(i), C(10), NULL), C(3), C(100)), 3, 3);
  CHECK_BOUNDS(take(ctx, LG_OP_WHERE, I, take(ctx, LG_OP_CMPLT, B, lg_uop_retain(i), C(5), NULL), C(3), C(100)), 3, 100);
  /* casts keep the bounds that fit */
  CHECK_BOUNDS(take(ctx, LG_OP_CAST, LG_DT_INT8, lg_uop_retain(s), NULL, NULL), -5, 5);
  CHECK_BOUNDS(take(ctx, LG_OP_CAST, LG_DT_UINT8, lg_uop_retain(s), NULL, NULL), 0, 255);
  CHECK_BOUNDS(take(ctx, LG_OP_CAST, LG_DT_INT64, lg_uop_retain(big), NULL, NULL), 0, 100000);
  CHECK_BOUNDS(take(ctx, LG_OP_CAST, B, lg_uop_retain(neg), NULL, NULL), 1, 1);
  CHECK_BOUNDS(take(ctx, LG_OP_CAST, LG_DT_INT32, cfloat(ctx, LG_DT_FLOAT32, 1.5), NULL, NULL), INT32_MIN, INT32_MAX);
  CHECK_BOUNDS(cint(ctx, B, 1), 1, 1);
#undef C
  /* no bounds: floats, uint64, vectors */
  lg_uop *f = cfloat(ctx, LG_DT_FLOAT32, 1.0), *u64 = cint(ctx, LG_DT_UINT64, 5);
  lg_uop *v = take(ctx, LG_OP_VECTORIZE, lg_dtype_vec(I, 2), lg_uop_retain(i), lg_uop_retain(i), NULL);
  CHECK(!lg_uop_bounds(f, NULL, NULL) && !lg_uop_bounds(u64, NULL, NULL) && v && !lg_uop_bounds(v, NULL, NULL));
  lg_uop_release(f), lg_uop_release(u64), lg_uop_release(v);
  lg_uop_release(i), lg_uop_release(s), lg_uop_release(neg), lg_uop_release(big);
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ctx_free(ctx);
}

typedef struct {
  uint64_t s;
} rng;

static uint64_t rnd(rng *r) {
  r->s ^= r->s >> 12, r->s ^= r->s << 25, r->s ^= r->s >> 27;
  return r->s * UINT64_C(0x2545F4914F6CDD1D);
}

/* the value of node k of an expression (ops, src indices) when x and y take values, by folding
 * CONSTs: false where C leaves the value undefined (division by zero, shift out of range) */
typedef struct {
  int32_t op;
  lg_dtype dt;
  int a, b, c;
  int64_t k;
} enode;

static bool eval(lg_ctx *ctx, const enode *e, int n, int64_t x, int64_t y, int64_t *val) {
  for (int k = 0; k < n; k++) {
    lg_uop *u = NULL, *out = NULL;
    if (e[k].op == LG_OP_CONST || e[k].op == LG_OP_DEFINE_VAR) {
      val[k] = e[k].op == LG_OP_CONST ? e[k].k : e[k].k ? y : x;
      continue;
    }
    int idx[3] = {e[k].a, e[k].b, e[k].c};
    lg_uop *src[3] = {NULL, NULL, NULL};
    int32_t ns = lg_op_min_src(e[k].op);
    for (int s = 0; s < ns; s++) lg_uop_const_int(ctx, e[idx[s]].dt, val[idx[s]], &src[s]);
    lg_uop_new(ctx, e[k].op, e[k].dt, src, ns, NULL, &u);
    if (u) lg_uop_fold(ctx, u, &out);
    for (int s = 0; s < ns; s++) lg_uop_release(src[s]);
    lg_uop_release(u);
    if (!out) return false;
    val[k] = lg_uop_arg(out)->i;
    lg_uop_release(out);
  }
  return true;
}

/* Random expressions over two small-range variables: every value taken for every assignment
 * must lie within the node's bounds. */
CTEST(vrange_is_sound) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  rng r = {99};
  static const int32_t ops[] = {LG_OP_ADD, LG_OP_SUB, LG_OP_MUL, LG_OP_IDIV, LG_OP_MOD, LG_OP_MAX, LG_OP_AND,
                                LG_OP_OR, LG_OP_XOR, LG_OP_SHL, LG_OP_SHR, LG_OP_NEG, LG_OP_WHERE, LG_OP_CAST};
  static const lg_dtype dts[] = {LG_DT_INT8, LG_DT_INT16, LG_DT_INT32, LG_DT_UINT8, LG_DT_UINT16};
  int64_t checked = 0;
  for (int t = 0; t < 3000; t++) {
    enum { N = 12 };
    enode e[N + 3]; /* one step adds up to 3 nodes */
    lg_uop *sym[N + 3] = {0};
    int64_t val[N + 3];
    lg_dtype dt = dts[rnd(&r) % 5];
    int64_t lo, hi;
    lg_dt_int_range(dt, &lo, &hi);
    int64_t xl = lo + (int64_t)(rnd(&r) % (uint64_t)(hi - lo - 8)), yl = lo + (int64_t)(rnd(&r) % (uint64_t)(hi - lo - 8));
    if (rnd(&r) % 2) xl = (int64_t)(rnd(&r) % 20) - (lo < 0 ? 10 : 0);
    int64_t xh = xl + (int64_t)(rnd(&r) % 6), yh = yl + (int64_t)(rnd(&r) % 6);
    sym[0] = var(ctx, dt, "x", xl, xh), sym[1] = var(ctx, dt, "y", yl, yh);
    e[0] = (enode){LG_OP_DEFINE_VAR, dt, 0, 0, 0, 0}, e[1] = (enode){LG_OP_DEFINE_VAR, dt, 0, 0, 0, 1};
    int n = 2;
    while (n < N) {
      int32_t op = ops[rnd(&r) % (sizeof ops / sizeof ops[0])];
      int a = (int)(rnd(&r) % (uint64_t)n), b = (int)(rnd(&r) % (uint64_t)n);
      if (op == LG_OP_SHL || op == LG_OP_SHR || rnd(&r) % 4 == 0) {
        /* a constant right operand: shift amounts within the width */
        int64_t k = op == LG_OP_SHL || op == LG_OP_SHR ? (int64_t)(rnd(&r) % (uint64_t)(8 * lg_dtype_itemsize(dt)))
                                                       : (int64_t)(rnd(&r) % 9) - 4;
        e[n] = (enode){LG_OP_CONST, dt, 0, 0, 0, lg_wrap_int(dt, k)};
        sym[n] = cint(ctx, dt, k), b = n++;
      }
      if (op == LG_OP_WHERE) { /* WHERE(a < b, a, b) */
        e[n] = (enode){LG_OP_CMPLT, LG_DT_BOOL, a, b, 0, 0};
        sym[n] = node(ctx, LG_OP_CMPLT, LG_DT_BOOL, sym[a], sym[b], NULL);
        e[n + 1] = (enode){LG_OP_WHERE, dt, n, a, b, 0};
        sym[n + 1] = node(ctx, LG_OP_WHERE, dt, sym[n], sym[a], sym[b]);
        n += 2;
      } else if (op == LG_OP_CAST) { /* through another integer dtype and back */
        lg_dtype mid = dts[rnd(&r) % 5];
        e[n] = (enode){LG_OP_CAST, mid, a, 0, 0, 0};
        sym[n] = node(ctx, LG_OP_CAST, mid, sym[a], NULL, NULL);
        e[n + 1] = (enode){LG_OP_CAST, dt, n, 0, 0, 0};
        sym[n + 1] = node(ctx, LG_OP_CAST, dt, sym[n], NULL, NULL);
        n += 2;
      } else {
        e[n] = (enode){op, dt, a, b, 0, 0};
        sym[n] = node(ctx, op, dt, sym[a], op == LG_OP_NEG ? NULL : sym[b], NULL);
        n++;
      }
    }
    for (int64_t x = xl; x <= xh; x++) {
      for (int64_t y = yl; y <= yh; y++) {
        if (!eval(ctx, e, n, x, y, val)) continue;
        for (int k = 0; k < n; k++) {
          int64_t l = 0, h = 0;
          bool known = lg_uop_bounds(sym[k], &l, &h);
          checked++;
          CHECK_MSG(known && val[k] >= l && val[k] <= h, "node %d (%s, srcs %d %d) = %lld outside [%lld, %lld] at x=%lld y=%lld",
                    k, lg_op_name(e[k].op), e[k].a, e[k].b, (long long)val[k], (long long)l, (long long)h,
                    (long long)x, (long long)y);
        }
      }
    }
    for (int k = 0; k < n; k++) lg_uop_release(sym[k]);
  }
  CHECK(checked > 100000);
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ctx_free(ctx);
}

/* ---- spec ----------------------------------------------------------------------------------- */

/* verify u: expects a failure whose message contains want, or success when want is NULL */
static bool spec_says(lg_ctx *ctx, lg_uop *u, const char *want) {
  lg_status st = u ? lg_uop_verify(ctx, u) : LG_ERR_ARG;
  bool ok = want ? st == LG_ERR_SPEC && strstr(lg_ctx_error(ctx), want) != NULL : st == LG_OK;
  if (!ok) printf("\n  [%s] got status %d: %s", want ? want : "ok", st, lg_ctx_error(ctx));
  lg_uop_release(u);
  return ok;
}

CTEST(spec_checks) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  const lg_dtype I = LG_DT_INT32, F = LG_DT_FLOAT32, B = LG_DT_BOOL;
  lg_uop *i = var(ctx, I, "i", 0, 9), *f = cfloat(ctx, F, 1.5), *t = cint(ctx, B, 1);
  lg_uop *buf = NULL, *one = cint(ctx, I, 1);
  lg_arg slot = {.kind = LG_ARG_INT, .i = 0};
  REQUIRE_OK(ctx, lg_uop_new(ctx, LG_OP_DEFINE_GLOBAL, lg_dtype_ptr(F, LG_ADDR_GLOBAL), NULL, 0, &slot, &buf));
  /* a well-typed kernel: out[i] = where(i < 1, float(i) * 1.5, 1.5) */
  lg_uop *idx = node(ctx, LG_OP_INDEX, lg_dtype_ptr(F, LG_ADDR_GLOBAL), buf, i, NULL);
  lg_uop *val = take(ctx, LG_OP_MUL, F, node(ctx, LG_OP_CAST, F, i, NULL, NULL), lg_uop_retain(f), NULL);
  val = take(ctx, LG_OP_WHERE, F, node(ctx, LG_OP_CMPLT, B, i, one, NULL), val, lg_uop_retain(f));
  lg_uop *st = take(ctx, LG_OP_STORE, LG_DT_VOID, lg_uop_retain(idx), val, NULL);
  CHECK(spec_says(ctx, take(ctx, LG_OP_SINK, LG_DT_VOID, st, NULL, NULL), NULL));

  CHECK(spec_says(ctx, node(ctx, LG_OP_ADD, I, i, f, NULL), "spec: ADD int32: source 1 is float32, expected int32"));
  CHECK(spec_says(ctx, node(ctx, LG_OP_CMPLT, I, i, one, NULL), "spec: CMPLT int32: result must be bool for int32 operands"));
  CHECK(spec_says(ctx, node(ctx, LG_OP_CMPNE, B, i, f, NULL), "source 1 is float32, expected int32"));
  CHECK(spec_says(ctx, node(ctx, LG_OP_SQRT, I, i, NULL, NULL), "spec: SQRT int32: not defined on int32 values"));
  CHECK(spec_says(ctx, node(ctx, LG_OP_AND, F, f, f, NULL), "spec: AND float32: not defined on float32 values"));
  CHECK(spec_says(ctx, node(ctx, LG_OP_ADD, B, t, t, NULL), "not defined on bool values"));
  CHECK(spec_says(ctx, node(ctx, LG_OP_AND, B, t, t, NULL), NULL));
  CHECK(spec_says(ctx, node(ctx, LG_OP_WHERE, I, i, i, i), "spec: WHERE int32: condition is int32, expected bool"));
  CHECK(spec_says(ctx, node(ctx, LG_OP_WHERE, I, t, i, f), "source 2 is float32"));
  CHECK(spec_says(ctx, take(ctx, LG_OP_SHL, I, lg_uop_retain(i), cint(ctx, LG_DT_UINT8, 2), NULL), NULL));
  CHECK(spec_says(ctx, node(ctx, LG_OP_SHL, I, i, f, NULL), "shift amount is float32"));
  CHECK(spec_says(ctx, var(ctx, I, "v", 5, 1), "spec: DEFINE_VAR int32: \"v\" has min 5 > max 1"));
  CHECK(spec_says(ctx, var(ctx, F, "v", 0, 1), "dtype must be an integer"));
  CHECK(spec_says(ctx, node(ctx, LG_OP_RANGE, LG_DT_INT64, one, NULL, NULL), "spec: RANGE int64: end is int32, expected int64"));
  CHECK(spec_says(ctx, node(ctx, LG_OP_BITCAST, LG_DT_INT16, f, NULL, NULL), "source float32 has 4 bytes, int16 has 2"));
  CHECK(spec_says(ctx, node(ctx, LG_OP_BITCAST, I, f, NULL, NULL), NULL));
  CHECK(spec_says(ctx, node(ctx, LG_OP_SINK, I, one, NULL, NULL), "spec: SINK int32: dtype must be void"));
  CHECK(spec_says(ctx, node(ctx, LG_OP_VECTORIZE, lg_dtype_vec(I, 3), i, i, NULL), "2 sources for 3 lanes"));
  CHECK(spec_says(ctx, node(ctx, LG_OP_VECTORIZE, lg_dtype_vec(I, 2), i, f, NULL), "source 1 is float32, expected int32"));
  lg_uop *v2 = node(ctx, LG_OP_VECTORIZE, lg_dtype_vec(I, 2), i, one, NULL);
  lg_arg lanes = {.kind = LG_ARG_INTS, .n = 2, .ints = (const int64_t[]){1, 0}};
  lg_arg bad = {.kind = LG_ARG_INTS, .n = 1, .ints = (const int64_t[]){2}};
  CHECK(spec_says(ctx, with_arg(ctx, LG_OP_GEP, lg_dtype_vec(I, 2), v2, &lanes), NULL));
  CHECK(spec_says(ctx, with_arg(ctx, LG_OP_GEP, I, v2, &bad), "spec: GEP int32: lane 2 is out of range for int32x2"));
  CHECK(spec_says(ctx, with_arg(ctx, LG_OP_GEP, F, v2, &(lg_arg){.kind = LG_ARG_INTS, .n = 1, .ints = (const int64_t[]){0}}),
                  "1 lanes of int32x2 do not give float32"));
  CHECK(spec_says(ctx, node(ctx, LG_OP_INDEX, F, i, i, NULL), "spec: INDEX float32: buffer is int32, not a pointer"));
  CHECK(spec_says(ctx, node(ctx, LG_OP_LOAD, F, i, NULL, NULL), "address is DEFINE_VAR int32, not a pointer or INDEX"));
  CHECK(spec_says(ctx, node(ctx, LG_OP_LOAD, F, idx, NULL, NULL), NULL));
  /* a bad node at the bottom of a deep chain is found, without recursion */
  lg_uop *x = node(ctx, LG_OP_ADD, I, i, f, NULL);
  for (int k = 0; k < 1000000 && x; k++) x = take(ctx, LG_OP_ADD, I, x, lg_uop_retain(one), NULL);
  CHECK(spec_says(ctx, x, "spec: ADD int32: source 1 is float32"));
  lg_uop *all[] = {i, f, t, buf, one, idx, v2};
  for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) lg_uop_release(all[k]);
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ctx_free(ctx);
}

/* ---- printer -------------------------------------------------------------------------------- */

static char *format(lg_ctx *ctx, lg_uop *u) {
  char *s = NULL;
  if (lg_uop_format(ctx, u, &s) != LG_OK) s = NULL;
  lg_uop_release(u);
  return s;
}

CTEST(print_graph) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  const lg_dtype I = LG_DT_INT32;
  lg_uop *i = var(ctx, I, "i", 0, 9), *m = take(ctx, LG_OP_MUL, I, lg_uop_retain(i), cint(ctx, I, 4), NULL);
  char *s = format(ctx, take(ctx, LG_OP_ADD, I, m, lg_uop_retain(i), NULL));
  CHECK_STR(s, "%0 = DEFINE_VAR int32 (\"i\", 0, 9)\n"
               "%1 = CONST int32 4\n"
               "%2 = MUL int32 %0 %1\n"
               "%3 = ADD int32 %2 %0\n");
  lg_free(s);

  lg_uop *consts[] = {cfloat(ctx, LG_DT_FLOAT64, 0.1), cfloat(ctx, LG_DT_FLOAT32, 0.1), cfloat(ctx, LG_DT_FLOAT32, -INFINITY),
                      cfloat(ctx, LG_DT_FLOAT64, NAN), cfloat(ctx, LG_DT_FLOAT16, -0.0), cfloat(ctx, LG_DT_FLOAT64, 1e300),
                      cint(ctx, LG_DT_BOOL, 1), cint(ctx, LG_DT_BOOL, 0), cint(ctx, LG_DT_UINT64, -1),
                      cint(ctx, LG_DT_INT64, INT64_MIN)};
  lg_uop *sink = NULL;
  REQUIRE_OK(ctx, lg_uop_new(ctx, LG_OP_SINK, LG_DT_VOID, consts, 10, NULL, &sink));
  for (int k = 0; k < 10; k++) lg_uop_release(consts[k]);
  s = format(ctx, sink);
  CHECK_STR(s, "%0 = CONST float64 0.1\n"
               "%1 = CONST float32 0.10000000149011612\n"
               "%2 = CONST float32 -inf\n"
               "%3 = CONST float64 nan\n"
               "%4 = CONST float16 -0\n"
               "%5 = CONST float64 1e+300\n"
               "%6 = CONST bool true\n"
               "%7 = CONST bool false\n"
               "%8 = CONST uint64 18446744073709551615\n"
               "%9 = CONST int64 -9223372036854775808\n"
               "%10 = SINK void %0 %1 %2 %3 %4 %5 %6 %7 %8 %9\n");
  lg_free(s);

  lg_uop *v = take(ctx, LG_OP_VECTORIZE, lg_dtype_vec(I, 2), lg_uop_retain(i), cint(ctx, I, 1), NULL);
  lg_arg lanes = {.kind = LG_ARG_INTS, .n = 2, .ints = (const int64_t[]){1, 0}};
  lg_arg name = {.kind = LG_ARG_STR, .s = "a \"q\"\n"};
  lg_uop *g = with_arg(ctx, LG_OP_GEP, lg_dtype_vec(I, 2), v, &lanes);
  s = format(ctx, take(ctx, LG_OP_CUSTOM, I, g, NULL, NULL));
  CHECK_STR(s, "%0 = DEFINE_VAR int32 (\"i\", 0, 9)\n"
               "%1 = CONST int32 1\n"
               "%2 = VECTORIZE int32x2 %0 %1\n"
               "%3 = GEP int32x2 %2 (1, 0)\n"
               "%4 = CUSTOM int32 %3\n");
  lg_free(s);
  s = format(ctx, with_arg(ctx, LG_OP_CUSTOM, lg_dtype_ptr(LG_DT_FLOAT32, LG_ADDR_LOCAL), v, &name));
  CHECK_STR(s, "%0 = DEFINE_VAR int32 (\"i\", 0, 9)\n"
               "%1 = CONST int32 1\n"
               "%2 = VECTORIZE int32x2 %0 %1\n"
               "%3 = CUSTOM float32 local* %2 \"a \\\"q\\\"\\x0a\"\n");
  lg_free(s);
  lg_uop_release(v), lg_uop_release(i);

  /* a million-deep chain prints without recursion, one line per node */
  lg_uop *one = cint(ctx, I, 1), *x = var(ctx, I, "x", 0, 1);
  for (int k = 0; k < 1000000 && x; k++) x = take(ctx, LG_OP_ADD, I, x, lg_uop_retain(one), NULL);
  lg_uop_release(one);
  s = format(ctx, x);
  REQUIRE(s);
  size_t nl = 0;
  for (const char *p = s; *p; p++) nl += *p == '\n';
  CHECK_INT(nl, 1000002);
  const char *head = "%0 = DEFINE_VAR int32 (\"x\", 0, 1)\n%1 = CONST int32 1\n%2 = ADD int32 %0 %1\n";
  CHECK(strncmp(s, head, strlen(head)) == 0);
  CHECK(strstr(s, "%1000001 = ADD int32 %1000000 %1\n") != NULL);
  lg_free(s);
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ctx_free(ctx);
}
