/* test_shape.c: shapes of tensor-level nodes (core/shape.c): each op's rule, each error
 * message, int64 overflow, the layout in the node, printing and long chains. */
#include "ctest.h"
#include "internal.h"

#define INTS(...)                                                                              \
  (&(lg_arg){.kind = LG_ARG_INTS, .n = (int32_t)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), \
             .ints = (const int64_t[]){__VA_ARGS__}})
#define RED(op, ...)                                                                             \
  (&(lg_arg){.kind = LG_ARG_STR_INTS, .s = op, .n = (int32_t)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), \
             .ints = (int64_t[]){__VA_ARGS__}})
static const lg_arg no_ints = {.kind = LG_ARG_INTS};
static const lg_dtype F = LG_DT_FLOAT32;

/* op over the non-NULL sources among a, b, c (borrowed); NULL when building fails */
static lg_uop *mk(lg_ctx *ctx, int32_t op, lg_dtype dt, lg_uop *a, lg_uop *b, lg_uop *c, const lg_arg *arg) {
  lg_uop *src[3] = {a, b, c}, *u = NULL;
  int32_t n = c ? 3 : b ? 2 : a ? 1 : 0;
  lg_uop_new(ctx, op, dt, src, n, arg, &u);
  return u;
}

/* a flat buffer of `size` elements (id 0) reshaped to the given shape */
static lg_uop *tensor(lg_ctx *ctx, lg_dtype dt, const lg_arg *shape) {
  int64_t size = 1;
  for (int32_t i = 0; i < shape->n; i++) size *= shape->ints[i];
  lg_uop *buf = mk(ctx, LG_OP_BUFFER, dt, NULL, NULL, NULL, INTS(size, 0));
  lg_uop *u = buf ? mk(ctx, LG_OP_RESHAPE, dt, buf, NULL, NULL, shape) : NULL;
  lg_uop_release(buf);
  return u;
}

static lg_uop *cnum(lg_ctx *ctx, lg_dtype dt, int64_t v) {
  lg_uop *u = NULL;
  lg_uop_const_int(ctx, dt, v, &u);
  return u;
}

/* "(3,4)", "()" or "none" */
static const char *shape_text(const lg_uop *u, char *buf, size_t size) {
  if (!u) return "(no node)";
  if (lg_uop_ndim(u) < 0) return lg_uop_shape(u) ? "(shape without ndim)" : "none";
  size_t len = (size_t)snprintf(buf, size, "(");
  for (int32_t i = 0; i < lg_uop_ndim(u); i++)
    len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? "," : "", (long long)lg_uop_shape(u)[i]);
  snprintf(buf + len, size - len, ")");
  return buf;
}

#define CHECK_SHAPE(u, want)                                    \
  do {                                                          \
    char shape_buf_[512];                                       \
    CHECK_STR(shape_text((u), shape_buf_, sizeof shape_buf_), want); \
  } while (0)

/* The message of a build that must fail with LG_ERR_ARG and leave no node behind. */
static const char *build_error(lg_ctx *ctx, int32_t op, lg_dtype dt, lg_uop *a, lg_uop *b, lg_uop *c,
                               const lg_arg *arg) {
  int64_t live = lg_ctx_live_nodes(ctx), bytes = lg_ctx_live_bytes(ctx);
  lg_uop *src[3] = {a, b, c}, *u = NULL;
  lg_status st = lg_uop_new(ctx, op, dt, src, c ? 3 : b ? 2 : a ? 1 : 0, arg, &u);
  if (st == LG_OK) {
    lg_uop_release(u);
    return "(built)";
  }
  if (st != LG_ERR_ARG) return "(not LG_ERR_ARG)";
  if (u || lg_ctx_live_nodes(ctx) != live || lg_ctx_live_bytes(ctx) != bytes) return "(left a node)";
  return lg_ctx_error(ctx);
}
#define CHECK_FAILS(want, ...) CHECK_STR(build_error(ctx, __VA_ARGS__), want)

/* release the listed nodes, then check that nothing is left */
#define RELEASE_ALL(...)                                                             \
  do {                                                                               \
    lg_uop *all_[] = {__VA_ARGS__};                                                  \
    for (size_t k_ = 0; k_ < sizeof all_ / sizeof all_[0]; k_++) lg_uop_release(all_[k_]); \
    CHECK_INT(lg_ctx_live_nodes(ctx), 0);                                            \
    CHECK_INT(lg_ctx_live_bytes(ctx), 0);                                            \
  } while (0)

static lg_uop *device(lg_ctx *ctx, const char *name) {
  lg_uop *u = NULL;
  lg_uop_new(ctx, LG_OP_DEVICE, LG_DT_VOID, NULL, 0, &(lg_arg){.kind = LG_ARG_STR, .s = name}, &u);
  return u;
}

CTEST(shape_buffer) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_uop *b = mk(ctx, LG_OP_BUFFER, F, NULL, NULL, NULL, INTS(12, 0));
  lg_uop *b2 = mk(ctx, LG_OP_BUFFER, F, NULL, NULL, NULL, INTS(12, 0));
  lg_uop *b3 = mk(ctx, LG_OP_BUFFER, F, NULL, NULL, NULL, INTS(12, 1));
  lg_uop *cpu = device(ctx, "CPU"), *bd = mk(ctx, LG_OP_BUFFER, F, cpu, NULL, NULL, INTS(0, 2));
  REQUIRE(b && b3 && bd);
  CHECK(b == b2);
  CHECK(b != b3); /* the id keeps buffers apart */
  CHECK_INT(lg_uop_ndim(b), 1);
  CHECK_INT(lg_uop_shape(b)[0], 12);
  CHECK_SHAPE(bd, "(0)");
  CHECK_SHAPE(cpu, "none");
  lg_uop *one = cnum(ctx, F, 1), *var = NULL;
  lg_uop_new(ctx, LG_OP_DEFINE_VAR, LG_DT_INT32, NULL, 0,
             &(lg_arg){.kind = LG_ARG_STR_INTS, .s = "i", .n = 2, .ints = (const int64_t[]){0, 9}}, &var);
  CHECK_INT(lg_uop_ndim(one), -1);
  CHECK(lg_uop_shape(one) == NULL);
  CHECK_SHAPE(var, "none");
  lg_uop *nodev = mk(ctx, LG_OP_DEVICE, LG_DT_VOID, NULL, NULL, NULL, NULL);
  CHECK_FAILS("BUFFER: arg must be (size, id), got no arg", LG_OP_BUFFER, F, NULL, NULL, NULL, NULL);
  CHECK_FAILS("BUFFER: arg must be (size, id), got 1 ints", LG_OP_BUFFER, F, NULL, NULL, NULL, INTS(12));
  CHECK_FAILS("BUFFER: arg must be (size, id), got a string arg", LG_OP_BUFFER, F, NULL, NULL, NULL,
              &(lg_arg){.kind = LG_ARG_STR, .s = "x"});
  CHECK_FAILS("BUFFER: size -1 is negative", LG_OP_BUFFER, F, NULL, NULL, NULL, INTS(-1, 0));
  CHECK_FAILS("BUFFER: the source is a CONST, not a DEVICE", LG_OP_BUFFER, F, one, NULL, NULL, INTS(4, 0));
  CHECK_FAILS("BUFFER: the DEVICE source has no arg, not a name", LG_OP_BUFFER, F, nodev, NULL, NULL, INTS(4, 0));
  RELEASE_ALL(b, b2, b3, cpu, bd, one, var, nodev);
  lg_ctx_free(ctx);
}

CTEST(shape_reshape) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_uop *x = tensor(ctx, F, INTS(2, 3)), *y = mk(ctx, LG_OP_RESHAPE, F, x, NULL, NULL, INTS(3, 1, 2));
  lg_uop *flat = mk(ctx, LG_OP_RESHAPE, F, y, NULL, NULL, INTS(6));
  CHECK_SHAPE(x, "(2,3)");
  CHECK_SHAPE(y, "(3,1,2)");
  CHECK_SHAPE(flat, "(6)");
  /* a shapeless value counts as one element: the start of a tensor-level scalar */
  lg_uop *c = cnum(ctx, F, 2), *s = mk(ctx, LG_OP_RESHAPE, F, c, NULL, NULL, &no_ints);
  lg_uop *s11 = mk(ctx, LG_OP_RESHAPE, F, s, NULL, NULL, INTS(1, 1));
  CHECK_SHAPE(s, "()");
  CHECK(lg_uop_shape(s) != NULL);
  CHECK_SHAPE(s11, "(1,1)");
  lg_uop *z = tensor(ctx, F, INTS(0)), *z2 = mk(ctx, LG_OP_RESHAPE, F, z, NULL, NULL, INTS(4, 0, 7));
  CHECK_SHAPE(z2, "(4,0,7)");
  CHECK_FAILS("RESHAPE: (2,3) has 6 elements, (4,2) has 8", LG_OP_RESHAPE, F, x, NULL, NULL, INTS(4, 2));
  CHECK_FAILS("RESHAPE: () has 1 element, (2) has 2", LG_OP_RESHAPE, F, s, NULL, NULL, INTS(2));
  CHECK_FAILS("RESHAPE: a shapeless scalar has 1 element, (0) has 0", LG_OP_RESHAPE, F, c, NULL, NULL, INTS(0));
  CHECK_FAILS("RESHAPE: (2,-3) has a negative size", LG_OP_RESHAPE, F, x, NULL, NULL, INTS(2, -3));
  CHECK_FAILS("RESHAPE: arg must be the new shape (ints), got an int arg", LG_OP_RESHAPE, F, x, NULL, NULL,
              &(lg_arg){.kind = LG_ARG_INT, .i = 6});
  CHECK_FAILS("RESHAPE: arg must be the new shape (ints), got a (name, ints) arg", LG_OP_RESHAPE, F, x, NULL, NULL,
              &(lg_arg){.kind = LG_ARG_STR_INTS, .s = "a", .n = 1, .ints = (const int64_t[]){6}});
  CHECK_FAILS("RESHAPE: (1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,...) has 17 axes, at most 16", LG_OP_RESHAPE, F, s, NULL,
              NULL, INTS(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1));
  lg_uop *d16 = mk(ctx, LG_OP_RESHAPE, F, s, NULL, NULL, INTS(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1));
  CHECK_INT(lg_uop_ndim(d16), LG_MAX_DIMS);
  /* element counts are int64; a 0 counts as 1 in the overflow check, so strides stay representable */
  CHECK_FAILS("RESHAPE: (4294967296,4294967296) has too many elements (overflows int64)", LG_OP_RESHAPE, F, z, NULL,
              NULL, INTS(4294967296, 4294967296));
  CHECK_FAILS("RESHAPE: (0,4611686018427387904,2) has too many elements (overflows int64)", LG_OP_RESHAPE, F, z,
              NULL, NULL, INTS(0, 4611686018427387904, 2));
  lg_uop *big = mk(ctx, LG_OP_RESHAPE, F, z, NULL, NULL, INTS(0, 4611686018427387904));
  CHECK_SHAPE(big, "(0,4611686018427387904)");
  RELEASE_ALL(x, y, flat, c, s, s11, z, z2, d16, big);
  lg_ctx_free(ctx);
}

CTEST(shape_permute_expand) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_uop *x = tensor(ctx, F, INTS(2, 3, 4)), *c = cnum(ctx, F, 1);
  lg_uop *p = mk(ctx, LG_OP_PERMUTE, F, x, NULL, NULL, INTS(2, 0, 1));
  CHECK_SHAPE(p, "(4,2,3)");
  lg_uop *s = mk(ctx, LG_OP_RESHAPE, F, c, NULL, NULL, &no_ints), *ps = mk(ctx, LG_OP_PERMUTE, F, s, NULL, NULL, &no_ints);
  CHECK_SHAPE(ps, "()");
  CHECK_FAILS("PERMUTE: (1,0,0) is not a permutation of 3 axes", LG_OP_PERMUTE, F, x, NULL, NULL, INTS(1, 0, 0));
  CHECK_FAILS("PERMUTE: (1,0) is not a permutation of 3 axes", LG_OP_PERMUTE, F, x, NULL, NULL, INTS(1, 0));
  CHECK_FAILS("PERMUTE: (0,1,3) is not a permutation of 3 axes", LG_OP_PERMUTE, F, x, NULL, NULL, INTS(0, 1, 3));
  CHECK_FAILS("PERMUTE: (0,-1,2) is not a permutation of 3 axes", LG_OP_PERMUTE, F, x, NULL, NULL, INTS(0, -1, 2));
  CHECK_FAILS("PERMUTE: arg must be 3 ints (a permutation of the axes of (2,3,4)), got no arg", LG_OP_PERMUTE, F, x,
              NULL, NULL, NULL);
  CHECK_FAILS("PERMUTE: the source (CONST) has no shape", LG_OP_PERMUTE, F, c, NULL, NULL, &no_ints);

  lg_uop *col = tensor(ctx, F, INTS(3, 1)), *e = mk(ctx, LG_OP_EXPAND, F, col, NULL, NULL, INTS(3, 4));
  lg_uop *e0 = mk(ctx, LG_OP_EXPAND, F, col, NULL, NULL, INTS(3, 0)), *same = mk(ctx, LG_OP_EXPAND, F, col, NULL, NULL, INTS(3, 1));
  CHECK_SHAPE(e, "(3,4)");
  CHECK_SHAPE(e0, "(3,0)"); /* 1 -> 0 is allowed */
  CHECK_SHAPE(same, "(3,1)");
  CHECK_FAILS("EXPAND: cannot expand (3,1) to (4,4): axis 0 has size 3, not 1", LG_OP_EXPAND, F, col, NULL, NULL,
              INTS(4, 4));
  CHECK_FAILS("EXPAND: cannot expand (3,1) to (3,4,5): 2 axes vs 3", LG_OP_EXPAND, F, col, NULL, NULL, INTS(3, 4, 5));
  CHECK_FAILS("EXPAND: cannot expand (3,1) to (4): 2 axes vs 1", LG_OP_EXPAND, F, col, NULL, NULL, INTS(4));
  CHECK_FAILS("EXPAND: (3,-1) has a negative size", LG_OP_EXPAND, F, col, NULL, NULL, INTS(3, -1));
  CHECK_FAILS("EXPAND: arg must be the new shape (ints), got a float arg", LG_OP_EXPAND, F, col, NULL, NULL,
              &(lg_arg){.kind = LG_ARG_FLOAT, .f = 1.5});
  CHECK_FAILS("EXPAND: the source (CONST) has no shape", LG_OP_EXPAND, F, c, NULL, NULL, &no_ints);
  lg_uop *ones = tensor(ctx, F, INTS(1, 1));
  CHECK_FAILS("EXPAND: (4294967296,4294967296) has too many elements (overflows int64)", LG_OP_EXPAND, F, ones, NULL,
              NULL, INTS(4294967296, 4294967296));
  RELEASE_ALL(x, c, p, s, ps, col, e, e0, same, ones);
  lg_ctx_free(ctx);
}

CTEST(shape_pad_shrink_flip) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_uop *x = tensor(ctx, F, INTS(3, 4)), *c = cnum(ctx, F, 1);
  lg_uop *p = mk(ctx, LG_OP_PAD, F, x, NULL, NULL, INTS(1, 2, 0, 3));
  CHECK_SHAPE(p, "(6,7)");
  CHECK_FAILS("PAD: arg must be 4 ints (before, after per axis of (3,4)), got 3", LG_OP_PAD, F, x, NULL, NULL,
              INTS(1, 2, 0));
  CHECK_FAILS("PAD: arg must be 4 ints (before, after per axis of (3,4)), got no arg", LG_OP_PAD, F, x, NULL, NULL, NULL);
  CHECK_FAILS("PAD: axis 1 of (3,4): padding (0,-1) is negative", LG_OP_PAD, F, x, NULL, NULL, INTS(0, 0, 0, -1));
  CHECK_FAILS("PAD: axis 0 of (3,4): padding (9223372036854775807,0) overflows int64", LG_OP_PAD, F, x, NULL, NULL,
              INTS(INT64_MAX, 0, 0, 0));
  CHECK_FAILS("PAD: (4294967296,4294967296) has too many elements (overflows int64)", LG_OP_PAD, F, x, NULL, NULL,
              INTS(4294967293, 0, 4294967292, 0));
  CHECK_FAILS("PAD: the source (CONST) has no shape", LG_OP_PAD, F, c, NULL, NULL, &no_ints);

  lg_uop *s = mk(ctx, LG_OP_SHRINK, F, x, NULL, NULL, INTS(1, 3, 0, 4));
  lg_uop *s0 = mk(ctx, LG_OP_SHRINK, F, x, NULL, NULL, INTS(3, 3, 2, 2));
  CHECK_SHAPE(s, "(2,4)");
  CHECK_SHAPE(s0, "(0,0)");
  CHECK_FAILS("SHRINK: axis 1 of (3,4): (2,5) is not a range within 0..4", LG_OP_SHRINK, F, x, NULL, NULL,
              INTS(0, 3, 2, 5));
  CHECK_FAILS("SHRINK: axis 0 of (3,4): (2,1) is not a range within 0..3", LG_OP_SHRINK, F, x, NULL, NULL,
              INTS(2, 1, 0, 4));
  CHECK_FAILS("SHRINK: axis 0 of (3,4): (-1,2) is not a range within 0..3", LG_OP_SHRINK, F, x, NULL, NULL,
              INTS(-1, 2, 0, 4));
  CHECK_FAILS("SHRINK: arg must be 4 ints (start, end per axis of (3,4)), got 2", LG_OP_SHRINK, F, x, NULL, NULL,
              INTS(0, 1));
  CHECK_FAILS("SHRINK: the source (CONST) has no shape", LG_OP_SHRINK, F, c, NULL, NULL, &no_ints);

  lg_uop *f = mk(ctx, LG_OP_FLIP, F, x, NULL, NULL, INTS(0, 1));
  CHECK_SHAPE(f, "(3,4)");
  CHECK_FAILS("FLIP: arg (0,2) must hold 0 or 1 per axis", LG_OP_FLIP, F, x, NULL, NULL, INTS(0, 2));
  CHECK_FAILS("FLIP: arg must be 2 ints (0 or 1 per axis of (3,4)), got 1", LG_OP_FLIP, F, x, NULL, NULL, INTS(1));
  CHECK_FAILS("FLIP: arg must be 2 ints (0 or 1 per axis of (3,4)), got a string arg", LG_OP_FLIP, F, x, NULL, NULL,
              &(lg_arg){.kind = LG_ARG_STR, .s = "x"});
  CHECK_FAILS("FLIP: the source (CONST) has no shape", LG_OP_FLIP, F, c, NULL, NULL, &no_ints);
  RELEASE_ALL(x, c, p, s, s0, f);
  lg_ctx_free(ctx);
}

CTEST(shape_reduce) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_uop *x = tensor(ctx, F, INTS(2, 3, 4)), *c = cnum(ctx, F, 1);
  lg_uop *r1 = mk(ctx, LG_OP_REDUCE_AXIS, F, x, NULL, NULL, RED("ADD", 1));
  lg_uop *r2 = mk(ctx, LG_OP_REDUCE_AXIS, F, x, NULL, NULL, RED("MAX", 2, 0));
  lg_uop *r0 = mk(ctx, LG_OP_REDUCE_AXIS, F, x, NULL, NULL, &(lg_arg){.kind = LG_ARG_STR_INTS, .s = "MUL"});
  CHECK_SHAPE(r1, "(2,1,4)");
  CHECK_SHAPE(r2, "(1,3,1)");
  CHECK_SHAPE(r0, "(2,3,4)");
  CHECK_FAILS("REDUCE_AXIS: the reduce op must be ADD, MAX or MUL, got SUB", LG_OP_REDUCE_AXIS, F, x, NULL, NULL,
              RED("SUB", 0));
  CHECK_FAILS("REDUCE_AXIS: axis 3 is out of range for (2,3,4)", LG_OP_REDUCE_AXIS, F, x, NULL, NULL, RED("ADD", 3));
  CHECK_FAILS("REDUCE_AXIS: axis -1 is out of range for (2,3,4)", LG_OP_REDUCE_AXIS, F, x, NULL, NULL, RED("ADD", -1));
  CHECK_FAILS("REDUCE_AXIS: axis 1 appears twice", LG_OP_REDUCE_AXIS, F, x, NULL, NULL, RED("ADD", 1, 0, 1));
  CHECK_FAILS("REDUCE_AXIS: arg must be (op name, axis...), got no arg", LG_OP_REDUCE_AXIS, F, x, NULL, NULL, NULL);
  CHECK_FAILS("REDUCE_AXIS: arg must be (op name, axis...), got an ints arg", LG_OP_REDUCE_AXIS, F, x, NULL, NULL, &no_ints);
  CHECK_FAILS("REDUCE_AXIS: the source (CONST) has no shape", LG_OP_REDUCE_AXIS, F, c, NULL, NULL, RED("ADD", 0));
  RELEASE_ALL(x, c, r1, r2, r0);
  lg_ctx_free(ctx);
}

CTEST(shape_elementwise) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_uop *a = tensor(ctx, F, INTS(3, 4)), *b = tensor(ctx, F, INTS(3, 5)), *c = cnum(ctx, F, 2);
  lg_uop *t = mk(ctx, LG_OP_BUFFER, LG_DT_BOOL, NULL, NULL, NULL, INTS(12, 7));
  lg_uop *cond = mk(ctx, LG_OP_RESHAPE, LG_DT_BOOL, t, NULL, NULL, INTS(3, 4));
  lg_uop *add = mk(ctx, LG_OP_ADD, F, a, a, NULL, NULL), *addc = mk(ctx, LG_OP_ADD, F, a, c, NULL, NULL);
  lg_uop *cadd = mk(ctx, LG_OP_ADD, F, c, a, NULL, NULL), *neg = mk(ctx, LG_OP_NEG, F, a, NULL, NULL, NULL);
  lg_uop *lt = mk(ctx, LG_OP_CMPLT, LG_DT_BOOL, a, c, NULL, NULL), *wh = mk(ctx, LG_OP_WHERE, F, cond, a, c, NULL);
  lg_uop *cc = mk(ctx, LG_OP_ADD, F, c, c, NULL, NULL);
  CHECK_SHAPE(add, "(3,4)");
  CHECK_SHAPE(addc, "(3,4)");
  CHECK_SHAPE(cadd, "(3,4)");
  CHECK_SHAPE(neg, "(3,4)");
  CHECK_SHAPE(lt, "(3,4)");
  CHECK_SHAPE(wh, "(3,4)");
  CHECK_SHAPE(cc, "none"); /* no shaped source: no shape */
  lg_uop *cast = mk(ctx, LG_OP_CAST, LG_DT_INT8, a, NULL, NULL, NULL), *bc = mk(ctx, LG_OP_BITCAST, LG_DT_INT32, a, NULL, NULL, NULL);
  lg_uop *cont = mk(ctx, LG_OP_CONTIGUOUS, F, a, NULL, NULL, NULL), *det = mk(ctx, LG_OP_DETACH, F, a, NULL, NULL, NULL);
  lg_uop *cpu = device(ctx, "CPU"), *cp = mk(ctx, LG_OP_COPY, F, a, cpu, NULL, NULL), *cp1 = mk(ctx, LG_OP_COPY, F, a, NULL, NULL, NULL);
  lg_uop *sbc = mk(ctx, LG_OP_BITCAST, LG_DT_INT16, c, NULL, NULL, NULL); /* shapeless: the spec's business */
  CHECK_SHAPE(cast, "(3,4)");
  CHECK_SHAPE(bc, "(3,4)");
  CHECK_SHAPE(cont, "(3,4)");
  CHECK_SHAPE(det, "(3,4)");
  CHECK_SHAPE(cp, "(3,4)");
  CHECK_SHAPE(cp1, "(3,4)");
  CHECK_SHAPE(sbc, "none");
  /* kernel-level ops have no shape, whatever their sources */
  lg_uop *sink = mk(ctx, LG_OP_SINK, LG_DT_VOID, a, b, NULL, NULL);
  CHECK_SHAPE(sink, "none");
  lg_uop *var = NULL;
  lg_uop_new(ctx, LG_OP_DEFINE_VAR, LG_DT_INT32, NULL, 0,
             &(lg_arg){.kind = LG_ARG_STR_INTS, .s = "i", .n = 2, .ints = (const int64_t[]){0, 9}}, &var);
  CHECK_FAILS("ADD: shapes (3,4) and (3,5) differ", LG_OP_ADD, F, a, b, NULL, NULL);
  CHECK_FAILS("MULACC: shapes (3,4) and (3,5) differ", LG_OP_MULACC, F, c, a, b, NULL);
  CHECK_FAILS("WHERE: shapes (3,4) and (3,5) differ", LG_OP_WHERE, F, cond, c, b, NULL);
  CHECK_FAILS("ADD: source 1 (DEFINE_VAR) has no shape, source 0 has (3,4)", LG_OP_ADD, LG_DT_INT32, a, var, NULL, NULL);
  CHECK_FAILS("MUL: source 0 (DEFINE_VAR) has no shape, source 1 has (3,4)", LG_OP_MUL, LG_DT_INT32, var, a, NULL, NULL);
  CHECK_FAILS("BITCAST: float32 to int16 changes the itemsize (4 to 2 bytes)", LG_OP_BITCAST, LG_DT_INT16, a, NULL,
              NULL, NULL);
  RELEASE_ALL(a, b, c, t, cond, add, addc, cadd, neg, lt, wh, cc, cast, bc, cont, det, cpu, cp, cp1, sbc, sink, var);
  lg_ctx_free(ctx);
}

CTEST(shape_assign) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_uop *t = tensor(ctx, F, INTS(3, 4)), *v = mk(ctx, LG_OP_PERMUTE, F, tensor(ctx, F, INTS(4, 3)), NULL, NULL, INTS(1, 0));
  lg_uop_release(lg_uop_src(v, 0)); /* tensor()'s reference: v holds its source */
  lg_uop *w = tensor(ctx, F, INTS(3, 5)), *c = cnum(ctx, F, 0), *c2 = cnum(ctx, F, 1);
  lg_uop *as = mk(ctx, LG_OP_ASSIGN, F, t, v, NULL, NULL), *bare = mk(ctx, LG_OP_ASSIGN, F, c, c2, NULL, NULL);
  CHECK_SHAPE(as, "(3,4)");
  CHECK_SHAPE(bare, "none");
  CHECK_FAILS("ASSIGN: target (3,4) and value (3,5) differ", LG_OP_ASSIGN, F, t, w, NULL, NULL);
  CHECK_FAILS("ASSIGN: the value (CONST) has no shape, the target has (3,4)", LG_OP_ASSIGN, F, t, c, NULL, NULL);
  CHECK_FAILS("ASSIGN: the target (CONST) has no shape, the value has (3,4)", LG_OP_ASSIGN, F, c, t, NULL, NULL);
  RELEASE_ALL(t, v, w, c, c2, as, bare);
  lg_ctx_free(ctx);
}

/* The shape is derived: not part of the identity, and stored in the node's own allocation. */
CTEST(shape_layout) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_uop *x = tensor(ctx, F, INTS(2, 3)), *y = tensor(ctx, F, INTS(2, 3));
  CHECK(x == y);
  CHECK(lg_uop_hash(x) == lg_uop_hash(y));
  const char *lo = (const char *)x, *hi = lo + sizeof(lg_uop) + sizeof(lg_uop *) + 2 * sizeof(int64_t) + 2 * sizeof(int64_t);
  CHECK((const char *)lg_uop_shape(x) > lo && (const char *)(lg_uop_shape(x) + 2) <= hi);
  CHECK(lg_uop_shape(x) != lg_uop_arg(x)->ints);
  int64_t before = lg_ctx_live_bytes(ctx);
  lg_uop *p = mk(ctx, LG_OP_PERMUTE, F, x, NULL, NULL, INTS(1, 0));
  CHECK_INT(lg_ctx_live_bytes(ctx) - before, sizeof(lg_uop) + sizeof(lg_uop *) + 4 * sizeof(int64_t));
  RELEASE_ALL(x, y, p);
  lg_ctx_free(ctx);
}

CTEST(shape_print) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_uop *a = tensor(ctx, F, INTS(3, 4)), *c = cnum(ctx, F, 2), *s = mk(ctx, LG_OP_RESHAPE, F, c, NULL, NULL, &no_ints);
  lg_uop *e = mk(ctx, LG_OP_EXPAND, F, mk(ctx, LG_OP_RESHAPE, F, s, NULL, NULL, INTS(1, 1)), NULL, NULL, INTS(3, 4));
  lg_uop_release(lg_uop_src(e, 0));
  lg_uop *add = mk(ctx, LG_OP_ADD, F, a, e, NULL, NULL), *sink = mk(ctx, LG_OP_SINK, LG_DT_VOID, add, NULL, NULL, NULL);
  char *text = NULL;
  REQUIRE_OK(ctx, lg_uop_format(ctx, sink, &text));
  CHECK_STR(text, "%0 = BUFFER float32 (12) (12, 0)\n"
                  "%1 = RESHAPE float32 (3,4) %0 (3, 4)\n"
                  "%2 = CONST float32 2\n"
                  "%3 = RESHAPE float32 () %2 ()\n"
                  "%4 = RESHAPE float32 (1,1) %3 (1, 1)\n"
                  "%5 = EXPAND float32 (3,4) %4 (3, 4)\n"
                  "%6 = ADD float32 (3,4) %1 %5\n"
                  "%7 = SINK void %6\n");
  lg_free(text);
  RELEASE_ALL(a, c, s, e, add, sink);
  lg_ctx_free(ctx);
}

/* a million shaped nodes: movement ops and elementwise ops over each other, released at once */
CTEST(shape_long_chain) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_uop *x = tensor(ctx, F, INTS(3, 4)), *c = cnum(ctx, F, 1);
  for (int k = 0; k < 1000000 && x; k++) {
    lg_uop *y;
    switch (k % 4) {
    case 0: y = mk(ctx, LG_OP_PERMUTE, F, x, NULL, NULL, INTS(1, 0)); break;
    case 1: y = mk(ctx, LG_OP_RESHAPE, F, x, NULL, NULL, INTS(2, 6)); break;
    case 2: y = mk(ctx, LG_OP_RESHAPE, F, x, NULL, NULL, INTS(3, 4)); break;
    default: y = mk(ctx, LG_OP_ADD, F, x, c, NULL, NULL); break;
    }
    lg_uop_release(x);
    x = y;
  }
  REQUIRE(x);
  CHECK_SHAPE(x, "(3,4)");
  CHECK_INT(lg_ctx_live_nodes(ctx), 1000003);
  CHECK_FAILS("ADD: shapes (3,4) and (2,6) differ", LG_OP_ADD, F, x, lg_uop_src(lg_uop_src(x, 0), 0), NULL, NULL);
  RELEASE_ALL(x, c);
  lg_ctx_free(ctx);
}
