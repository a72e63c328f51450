/* opt.c: the kernel optimizer's transformations (luagrad.h, "kernel optimizer"; the heuristic
 * that picks them is Lua, stdlib_lua/luagrad/opt_heuristic.lua). Each one walks a toposort of
 * the kernel and rebuilds what changed, bottom-up: no recursion on the graph's depth. The nodes a
 * transformation builds are held by its scope until it ends, so its parts keep no counts of
 * their own; the caller gets a reference to the result. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "pattern.h"
#include "ptrmap.h"

static const char *const step_names[LG_OPT__COUNT] = {"upcast", "unroll", "accumulate", "merge",
                                                      "pad",    "swap",   "vectorize"};

const char *lg_opt_name(int32_t op) { return op >= 0 && op < LG_OPT__COUNT ? step_names[op] : NULL; }

int32_t lg_opt_lookup(const char *name) {
  for (int32_t i = 0; i < LG_OPT__COUNT; i++)
    if (name && strcmp(name, step_names[i]) == 0) return i;
  return -1;
}

/* ---- scope: the nodes one transformation built ---------------------------------------------- */

typedef struct scope {
  lg_ctx *ctx;
  lg_uop **held;
  int32_t n, cap;
} scope;

static void scope_free(scope *s) {
  while (s->n) lg_uop_release(s->held[--s->n]);
  free(s->held);
}

static lg_status oom(lg_ctx *ctx) { return lg_ctx_fail(ctx, LG_ERR_NOMEM, "opt: out of memory"); }

static lg_status fail(lg_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static lg_status fail(lg_ctx *ctx, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return lg_ctx_fail(ctx, LG_ERR_ARG, "opt: %s", msg);
}

/* keep the reference st handed out in *out */
static lg_status keep(scope *s, lg_status st, lg_uop **out) {
  if (st) return *out = NULL, st;
  if (!lg_reserve(&s->held, &s->cap, (int64_t)s->n + 1, sizeof *s->held)) {
    lg_uop_release(*out);
    *out = NULL;
    return oom(s->ctx);
  }
  s->held[s->n++] = *out;
  return LG_OK;
}

static lg_status mk(scope *s, int32_t op, lg_dtype dt, lg_uop *const *src, int32_t n, const lg_arg *arg, lg_uop **out) {
  return keep(s, lg_uop_new(s->ctx, op, dt, src, n, arg, out), out);
}

static lg_status iconst(scope *s, int64_t v, lg_uop **out) {
  return keep(s, lg_uop_const_int(s->ctx, LG_DT_INT32, v, out), out);
}

/* a op b, of a's dtype (bool of a's lanes for comparisons), as the UOp operators build it */
static lg_status bin(scope *s, int32_t op, lg_uop *a, lg_uop *b, lg_uop **out) {
  lg_uop *src[2] = {a, b};
  lg_dtype dt = lg_op_has(op, LG_OPF_CMP) ? lg_dtype_vec(LG_DT_BOOL, lg_dtype_lanes(a->dtype)) : a->dtype;
  return mk(s, op, dt, src, 2, NULL, out);
}

/* a op CONST(c) */
static lg_status binc(scope *s, int32_t op, lg_uop *a, int64_t c, lg_uop **out) {
  lg_uop *k;
  lg_status st = iconst(s, c, &k);
  return st ? st : bin(s, op, a, k, out);
}

static lg_status range_node(scope *s, int64_t size, int64_t axis, int64_t kind, lg_uop **out) {
  int64_t ints[2] = {axis, kind};
  lg_arg arg = {.kind = LG_ARG_INTS, .n = 2, .ints = ints};
  lg_uop *end;
  lg_status st = iconst(s, size, &end);
  return st ? st : mk(s, LG_OP_RANGE, LG_DT_INT32, &end, 1, &arg, out);
}

/* u with other sources */
static lg_status rebuild(scope *s, const lg_uop *u, lg_uop *const *src, int32_t n, lg_uop **out) {
  return mk(s, u->op, u->dtype, src, n, &u->arg, out);
}

static int64_t floordiv(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

/* ---- lists and graphs --------------------------------------------------------------------- */

typedef struct list {
  lg_uop **u;
  int32_t n, cap;
} list;

static bool push(list *l, lg_uop *u) {
  if (!lg_reserve(&l->u, &l->cap, (int64_t)l->n + 1, sizeof *l->u)) return false;
  l->u[l->n++] = u;
  return true;
}

/* The nodes of a root in lg_uop_toposort's order (post-order, sources in order), and each
 * one's position (pos: node -> index + 1). */
typedef struct graph {
  lg_uop **u;
  int64_t n;
  lg_ptrmap pos;
} graph;

static void graph_free(graph *g) {
  free(g->u);
  lg_ptrmap_free(&g->pos);
  *g = (graph){0};
}

static int64_t pos_of(const graph *g, const lg_uop *u) {
  void *v;
  return lg_ptrmap_get(&g->pos, u, &v) ? (int64_t)(intptr_t)v - 1 : -1;
}

static lg_status graph_of(lg_ctx *ctx, lg_uop *root, graph *g) {
  typedef struct {
    lg_uop *u;
    int32_t next;
  } frame;
  frame *stack = NULL;
  int64_t sp = 0, scap = 0, cap = 0;
  *g = (graph){0};
  bool ok = lg_ptrmap_put(&g->pos, root, NULL);
  for (lg_uop *next = root; ok && (next || sp);) {
    if (next) {
      if (sp == scap) {
        frame *f = realloc(stack, (size_t)(scap = scap ? 2 * scap : 64) * sizeof *stack);
        if (!(ok = f != NULL)) break;
        stack = f;
      }
      stack[sp++] = (frame){next, 0};
      next = NULL;
    }
    frame *f = &stack[sp - 1];
    if (f->next < f->u->nsrc) {
      lg_uop *src = f->u->src[f->next++];
      if (!lg_ptrmap_get(&g->pos, src, NULL)) ok = lg_ptrmap_put(&g->pos, src, NULL), next = src;
      continue;
    }
    if (g->n == cap) {
      lg_uop **u = realloc(g->u, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *g->u);
      if (!(ok = u != NULL)) break;
      g->u = u;
    }
    g->u[g->n++] = f->u;
    ok = lg_ptrmap_put(&g->pos, f->u, (void *)(intptr_t)g->n);
    sp--;
  }
  free(stack);
  if (!ok) graph_free(g);
  return ok ? LG_OK : oom(ctx);
}

/* dep[i] = nodes[i] depends on r (through sources that do not close r) */
static void dependents(lg_uop *const *nodes, int64_t n, const lg_ptrmap *pos, const lg_uop *r, uint8_t *dep) {
  for (int64_t i = 0; i < n; i++) {
    const lg_uop *u = nodes[i];
    bool d = u == r, closes = false;
    if (u->op == LG_OP_REDUCE || u->op == LG_OP_END)
      for (int32_t j = 1; j < u->nsrc; j++) closes = closes || u->src[j] == r;
    for (int32_t j = 0; j < u->nsrc && !closes && !d; j++) {
      void *p;
      d = lg_ptrmap_get(pos, u->src[j], &p) && dep[(intptr_t)p - 1];
    }
    dep[i] = d;
  }
}

lg_status lg_opt_dependents(lg_ctx *ctx, lg_uop *const *nodes, int64_t n, const lg_uop *r, uint8_t *dep) {
  lg_ptrmap pos = {0};
  for (int64_t i = 0; i < n; i++)
    if (!lg_ptrmap_put(&pos, nodes[i], (void *)(intptr_t)(i + 1))) return lg_ptrmap_free(&pos), oom(ctx);
  dependents(nodes, n, &pos, r, dep);
  lg_ptrmap_free(&pos);
  return LG_OK;
}

/* The graph g with the nodes of map (node -> node) replaced and everything above them rebuilt;
 * the root when nothing changed. */
static lg_status subst_graph(scope *s, const graph *g, const lg_ptrmap *map, lg_uop **out) {
  lg_uop **memo = malloc((size_t)g->n * sizeof *memo);
  list src = {0};
  lg_status st = memo ? LG_OK : oom(s->ctx);
  for (int64_t i = 0; i < g->n && !st; i++) {
    lg_uop *u = g->u[i];
    void *r;
    if (lg_ptrmap_get(map, u, &r)) {
      memo[i] = r;
      continue;
    }
    bool changed = false;
    src.n = 0;
    for (int32_t j = 0; j < u->nsrc; j++) {
      lg_uop *x = memo[pos_of(g, u->src[j])];
      changed = changed || x != u->src[j];
      if (!push(&src, x)) st = oom(s->ctx);
    }
    memo[i] = u;
    if (changed && !st) st = rebuild(s, u, src.u, src.n, &memo[i]);
  }
  if (!st) *out = memo[g->n - 1];
  free(memo);
  free(src.u);
  return st;
}

static lg_status substitute(scope *s, lg_uop *root, const lg_ptrmap *map, lg_uop **out) {
  graph g;
  lg_status st = graph_of(s->ctx, root, &g);
  if (!st) st = subst_graph(s, &g, map, out);
  graph_free(&g);
  return st;
}

/* root with the one node `from` replaced by `to` */
static lg_status replace1(scope *s, lg_uop *root, lg_uop *from, lg_uop *to, lg_uop **out) {
  lg_ptrmap map = {0};
  lg_status st = lg_ptrmap_put(&map, from, to) ? substitute(s, root, &map, out) : oom(s->ctx);
  lg_ptrmap_free(&map);
  return st;
}

/* ---- ranges ------------------------------------------------------------------------------- */

typedef struct rinfo {
  lg_uop *node;
  int64_t axis, kind, size;
  bool sized; /* the size is a constant */
} rinfo;

static bool range_info(lg_uop *u, rinfo *r) {
  if (u->op != LG_OP_RANGE || u->arg.kind != LG_ARG_INTS || u->arg.n < 2) return false;
  const lg_uop *e = u->src[0];
  *r = (rinfo){.node = u,
               .axis = u->arg.ints[0],
               .kind = u->arg.ints[1],
               .sized = e->op == LG_OP_CONST && e->arg.kind == LG_ARG_INT,
               .size = e->arg.i};
  return true;
}

/* the kernel's ranges, one per axis: the last of that axis in the toposort (as luagrad.opt's
 * ranges table keeps it) */
static lg_status ranges(lg_ctx *ctx, const graph *g, rinfo **out, int32_t *n) {
  rinfo *rs = NULL, r;
  int32_t cap = 0;
  *n = 0;
  for (int64_t i = 0; i < g->n; i++) {
    if (!range_info(g->u[i], &r)) continue;
    int32_t j = 0;
    while (j < *n && rs[j].axis != r.axis) j++;
    if (j == *n && !lg_reserve(&rs, &cap, (int64_t)*n + 1, sizeof *rs)) return free(rs), oom(ctx);
    if (j == *n) (*n)++;
    rs[j] = r;
  }
  *out = rs;
  return LG_OK;
}

static bool find_range(const graph *g, int64_t axis, rinfo *out) {
  bool found = false;
  rinfo r;
  for (int64_t i = 0; i < g->n; i++)
    if (range_info(g->u[i], &r) && r.axis == axis) *out = r, found = true;
  return found;
}

/* the range of axis for transformation `what`: of kind `kind` (-1: output or reduce), with a
 * constant size */
static lg_status range_of(lg_ctx *ctx, const graph *g, int64_t axis, int64_t kind, const char *what, rinfo *r) {
  static const char *const kinds[] = {"n output", " reduce", " vector lanes"};
  if (!find_range(g, axis, r)) return fail(ctx, "%s: the kernel has no range of axis %lld", what, (long long)axis);
  if (r->kind == LG_RANGE_LANES || (kind >= 0 && r->kind != kind)) {
    if (r->kind < 0 || r->kind > 2)
      return fail(ctx, "%s: axis %lld is a range of kind %lld", what, (long long)axis, (long long)r->kind);
    return fail(ctx, "%s: axis %lld is a%s range", what, (long long)axis, kinds[r->kind]);
  }
  if (!r->sized) return fail(ctx, "%s: axis %lld has a size that is not a constant", what, (long long)axis);
  return LG_OK;
}

static int64_t step_kind(int32_t op) {
  return op == LG_OPT_UPCAST ? LG_RANGE_OUTPUT : op == LG_OPT_UNROLL || op == LG_OPT_ACCUMULATE ? LG_RANGE_REDUCE : -1;
}

/* range_of on a fresh toposort of sink */
static lg_status range_in(lg_ctx *ctx, lg_uop *sink, int64_t axis, int64_t kind, const char *what, rinfo *r) {
  graph g;
  lg_status st = graph_of(ctx, sink, &g);
  if (!st) st = range_of(ctx, &g, axis, kind, what, r);
  graph_free(&g);
  return st;
}

lg_status lg_opt_range(lg_ctx *ctx, lg_uop *sink, int32_t op, int64_t axis, lg_uop **out) {
  rinfo r;
  *out = NULL;
  if (!sink || !lg_opt_name(op))
    return lg_ctx_fail(ctx, LG_ERR_ARG, "opt: no %s", sink ? "such transformation" : "kernel");
  lg_status st = range_in(ctx, sink, axis, step_kind(op), step_names[op], &r);
  if (!st) *out = r.node;
  return st;
}

/* the nodes of op (END or REDUCE) that close r, once for each time r is among their sources
 * after the first */
static lg_status closers(lg_ctx *ctx, const graph *g, const lg_uop *r, int32_t op, list *out) {
  *out = (list){0};
  for (int64_t i = 0; i < g->n; i++) {
    lg_uop *u = g->u[i];
    for (int32_t j = 1; u->op == op && j < u->nsrc; j++)
      if (u->src[j] == r && !push(out, u)) return free(out->u), *out = (list){0}, oom(ctx);
  }
  return LG_OK;
}

/* an END or REDUCE u with range r replaced by outer (dropped when NULL), around first; *out is
 * NULL when no range is left */
static lg_status reclose(scope *s, const lg_uop *u, lg_uop *first, const lg_uop *r, lg_uop *outer, lg_uop **out) {
  list src = {0};
  bool ok = push(&src, first);
  for (int32_t j = 1; j < u->nsrc && ok; j++) {
    if (u->src[j] != r)
      ok = push(&src, u->src[j]);
    else if (outer)
      ok = push(&src, outer);
  }
  lg_status st = !ok ? oom(s->ctx) : src.n == 1 ? (*out = NULL, LG_OK) : rebuild(s, u, src.u, src.n, out);
  free(src.u);
  return st;
}

/* ---- building blocks ---------------------------------------------------------------------- */

/* one effect for several: a GROUP of them (GROUPs flattened), or the one itself */
static lg_status group(scope *s, const list *effects, lg_uop **out) {
  list flat = {0};
  bool ok = true;
  for (int32_t i = 0; i < effects->n && ok; i++) {
    lg_uop *e = effects->u[i];
    if (e->op != LG_OP_GROUP) ok = push(&flat, e);
    for (int32_t j = 0; e->op == LG_OP_GROUP && j < e->nsrc && ok; j++) ok = push(&flat, e->src[j]);
  }
  lg_status st = !ok           ? oom(s->ctx)
                 : flat.n == 1 ? (*out = flat.u[0], LG_OK)
                               : mk(s, LG_OP_GROUP, LG_DT_VOID, flat.u, flat.n, NULL, out);
  free(flat.u);
  return st;
}

/* the ALU op that a REDUCE accumulates with: its arg "MAX", "MUL", else ADD */
static int32_t reduce_op(const lg_uop *red) {
  if (red->arg.kind == LG_ARG_STR && strcmp(red->arg.s, "MAX") == 0) return LG_OP_MAX;
  if (red->arg.kind == LG_ARG_STR && strcmp(red->arg.s, "MUL") == 0) return LG_OP_MUL;
  return LG_OP_ADD;
}

/* the identity of a REDUCE's op in its dtype: the lowest value for MAX, 1 for MUL, else 0 */
static lg_status identity(scope *s, const lg_uop *red, lg_uop **out) {
  lg_dtype dt = red->dtype;
  int32_t op = reduce_op(red);
  int64_t lo = 0, hi;
  if (op == LG_OP_MAX && lg_dtype_kind(dt) == 'f') return keep(s, lg_uop_const_float(s->ctx, dt, -INFINITY, out), out);
  if (op == LG_OP_MAX && lg_dtype_kind(dt) == 'i') lg_dt_int_range(dt, &lo, &hi); /* signed ints fit int64 */
  return keep(s, lg_uop_const_int(s->ctx, dt, op == LG_OP_MUL ? 1 : op == LG_OP_MAX ? lo : 0, out), out);
}

/* the REDUCE op of red applied to vals, as a balanced tree (vals is overwritten) */
static lg_status combine(scope *s, const lg_uop *red, list *vals, lg_uop **out) {
  int32_t op = reduce_op(red);
  while (vals->n > 1) {
    int32_t n = 0;
    for (int32_t i = 0; i < vals->n; i += 2) {
      lg_status st = i + 1 < vals->n ? bin(s, op, vals->u[i], vals->u[i + 1], &vals->u[n]) : LG_OK;
      if (st) return st;
      if (i + 1 == vals->n) vals->u[n] = vals->u[i];
      n++;
    }
    vals->n = n;
  }
  *out = vals->u[0];
  return LG_OK;
}

/* n copies of x, the i-th with r := idx[i] */
static lg_status copies(scope *s, lg_uop *x, lg_uop *r, lg_uop *const *idx, int64_t n, list *out) {
  graph g;
  lg_ptrmap map = {0};
  lg_status st = graph_of(s->ctx, x, &g);
  *out = (list){0};
  for (int64_t i = 0; i < n && !st; i++) {
    lg_uop *c;
    st = lg_ptrmap_put(&map, r, idx[i]) ? subst_graph(s, &g, &map, &c) : oom(s->ctx);
    if (!st && !push(out, c)) st = oom(s->ctx);
  }
  lg_ptrmap_free(&map);
  graph_free(&g);
  return st;
}

/* ---- the transformations ------------------------------------------------------------------ */

static lg_status pad(scope *s, lg_uop *sink, int64_t axis, int64_t multiple, lg_uop **out) {
  rinfo r;
  lg_status st = range_in(s->ctx, sink, axis, -1, "pad", &r);
  if (st) return st;
  if (multiple < 1) return fail(s->ctx, "pad: the multiple must be an integer >= 1, got %lld", (long long)multiple);
  int64_t n = r.size, m = floordiv(n + multiple - 1, multiple) * multiple;
  if (m == n) return *out = sink, LG_OK;
  lg_uop *r2, *valid;
  graph g = {0};
  lg_ptrmap map = {0};
  uint8_t *dep = NULL;
  list reds = {0};
  if ((st = range_node(s, m, axis, r.kind, &r2)) || (st = replace1(s, sink, r.node, r2, &sink)) ||
      (st = binc(s, LG_OP_CMPLT, r2, n, &valid)) || (st = graph_of(s->ctx, sink, &g)))
    goto done;
  /* every INDEX that depends on the range gets the gate r < n */
  if (!(dep = malloc((size_t)g.n))) goto nomem;
  dependents(g.u, g.n, &g.pos, r2, dep);
  for (int64_t i = 0; i < g.n && !st; i++) {
    lg_uop *u = g.u[i], *src[3], *gated;
    if (u->op != LG_OP_INDEX || u->nsrc < 2 || !dep[i]) continue;
    src[0] = u->src[0], src[1] = u->src[1], src[2] = valid;
    if (u->nsrc > 2) st = bin(s, LG_OP_AND, valid, u->src[2], &src[2]);
    if (!st && !(st = rebuild(s, u, src, 3, &gated)) && !lg_ptrmap_put(&map, u, gated)) goto nomem;
  }
  if (st || (st = subst_graph(s, &g, &map, &sink))) goto done;
  graph_free(&g);
  lg_ptrmap_free(&map);
  /* every REDUCE over it adds the identity in the extra iterations */
  if ((st = graph_of(s->ctx, sink, &g)) || (st = closers(s->ctx, &g, r2, LG_OP_REDUCE, &reds))) goto done;
  for (int32_t i = 0; i < reds.n && !st; i++) {
    lg_uop *u = reds.u[i], *id, *w, *src[3] = {valid, u->src[0], NULL};
    list nsrc = {0};
    if ((st = identity(s, u, &id))) break;
    src[2] = id;
    if ((st = mk(s, LG_OP_WHERE, u->src[0]->dtype, src, 3, NULL, &w))) break;
    bool ok = push(&nsrc, w);
    for (int32_t j = 1; j < u->nsrc && ok; j++) ok = push(&nsrc, u->src[j]);
    st = !ok ? oom(s->ctx) : rebuild(s, u, nsrc.u, nsrc.n, &w);
    free(nsrc.u);
    if (!st && !lg_ptrmap_put(&map, u, w)) goto nomem;
  }
  if (!st) st = subst_graph(s, &g, &map, out);
  goto done;
nomem:
  st = oom(s->ctx);
done:
  free(reds.u);
  free(dep);
  lg_ptrmap_free(&map);
  graph_free(&g);
  return st;
}

/* upcast, unroll and accumulate: r := outer*amount + i in `amount` copies of each closer's
 * first source; accumulate gives each copy of a REDUCE's value an accumulator of its own,
 * combined after the loop */
static lg_status split(scope *s, lg_uop *sink, int32_t op, int64_t axis, int64_t amount, lg_uop **out) {
  const char *what = step_names[op];
  int64_t kind = step_kind(op);
  rinfo r;
  lg_status st = range_in(s->ctx, sink, axis, kind, what, &r);
  if (st) return st;
  if (amount < 1) return fail(s->ctx, "%s: the amount must be an integer >= 1, got %lld", what, (long long)amount);
  if (r.size < 1) return fail(s->ctx, "%s: axis %lld has size %lld", what, (long long)axis, (long long)r.size);
  if (r.size % amount != 0 &&
      ((st = pad(s, sink, axis, amount, &sink)) || (st = range_in(s->ctx, sink, axis, kind, what, &r))))
    return st;
  int64_t n = r.size;
  lg_uop *outer = NULL, *base, **idx = malloc((size_t)amount * sizeof *idx);
  graph g = {0};
  list cl = {0}, vals = {0};
  lg_ptrmap map = {0};
  if (!idx) return oom(s->ctx);
  if ((n > amount && (st = range_node(s, floordiv(n, amount), axis, kind, &outer))) ||
      (st = outer ? binc(s, LG_OP_MUL, outer, amount, &base) : iconst(s, 0, &base)))
    goto done;
  for (int64_t i = 0; i < amount && !st; i++) st = binc(s, LG_OP_ADD, base, i, &idx[i]);
  int32_t cop = kind == LG_RANGE_OUTPUT ? LG_OP_END : LG_OP_REDUCE;
  if (st || (st = graph_of(s->ctx, sink, &g)) || (st = closers(s->ctx, &g, r.node, cop, &cl))) goto done;
  if (cl.n == 0) {
    st = fail(s->ctx, "%s: no %s closes axis %lld", what, cop == LG_OP_END ? "END" : "REDUCE", (long long)axis);
    goto done;
  }
  for (int32_t c = 0; c < cl.n && !st; c++) {
    lg_uop *u = cl.u[c], *v, *res;
    free(vals.u);
    if ((st = copies(s, u->src[0], r.node, idx, amount, &vals))) break;
    if (cop == LG_OP_END) {
      if (!(st = group(s, &vals, &v)) && !(st = reclose(s, u, v, r.node, outer, &res)) && !res) res = v;
    } else if (op == LG_OPT_ACCUMULATE) {
      for (int32_t i = 0; i < vals.n && !st; i++)
        if (!(st = reclose(s, u, vals.u[i], r.node, outer, &res)) && res) vals.u[i] = res;
      if (!st) st = combine(s, u, &vals, &res);
    } else {
      if (!(st = combine(s, u, &vals, &v)) && !(st = reclose(s, u, v, r.node, outer, &res)) && !res) res = v;
    }
    if (!st && !lg_ptrmap_put(&map, u, res)) st = oom(s->ctx);
  }
  if (!st) st = subst_graph(s, &g, &map, out);
done:
  free(idx);
  free(cl.u);
  free(vals.u);
  lg_ptrmap_free(&map);
  graph_free(&g);
  return st;
}

/* the ranges of axes a and b of one kind (b's loop directly inside a's for merge) */
static lg_status pair(lg_ctx *ctx, const graph *g, const char *what, int64_t a, int64_t b, rinfo *ra, rinfo *rb) {
  lg_status st = range_of(ctx, g, a, -1, what, ra);
  if (!st) st = range_of(ctx, g, b, -1, what, rb);
  if (!st && ra->kind != rb->kind)
    st = fail(ctx, "%s: axes %lld and %lld are ranges of different kinds", what, (long long)a, (long long)b);
  return st;
}

/* two ranges closed by the same REDUCEs or ENDs become one of their sizes' product, axis a:
 * a := m // size(b), b := m % size(b) */
static lg_status merge(scope *s, lg_uop *sink, int64_t a, int64_t b, lg_uop **out) {
  rinfo ra, rb;
  graph g;
  list ca = {0}, cb = {0};
  lg_ptrmap map = {0};
  lg_uop *m, *q, *rem;
  lg_status st = graph_of(s->ctx, sink, &g);
  if (st) return st;
  int32_t cop = LG_OP_END;
  if ((st = pair(s->ctx, &g, "merge", a, b, &ra, &rb))) goto done;
  cop = ra.kind == LG_RANGE_OUTPUT ? LG_OP_END : LG_OP_REDUCE;
  if ((st = closers(s->ctx, &g, ra.node, cop, &ca)) || (st = closers(s->ctx, &g, rb.node, cop, &cb))) goto done;
  bool same = ca.n == cb.n;
  for (int32_t i = 0; i < ca.n && same; i++) same = ca.u[i] == cb.u[i];
  if (!same) {
    st = fail(s->ctx, "merge: axes %lld and %lld are not closed together", (long long)a, (long long)b);
    goto done;
  }
  if ((st = range_node(s, ra.size * rb.size, a, ra.kind, &m))) goto done;
  for (int32_t i = 0; i < ca.n && !st; i++) {
    lg_uop *u = ca.u[i], *res;
    list src = {0};
    bool ok = push(&src, u->src[0]);
    for (int32_t j = 1; j < u->nsrc && ok; j++) {
      if (u->src[j] == ra.node)
        ok = push(&src, m);
      else if (u->src[j] != rb.node)
        ok = push(&src, u->src[j]);
    }
    st = !ok ? oom(s->ctx) : rebuild(s, u, src.u, src.n, &res);
    free(src.u);
    if (!st && !lg_ptrmap_put(&map, u, res)) st = oom(s->ctx);
  }
  if (st || (st = subst_graph(s, &g, &map, &sink))) goto done;
  lg_ptrmap_free(&map);
  if ((st = binc(s, LG_OP_IDIV, m, rb.size, &q)) || (st = binc(s, LG_OP_MOD, m, rb.size, &rem))) goto done;
  if (!lg_ptrmap_put(&map, ra.node, q) || !lg_ptrmap_put(&map, rb.node, rem))
    st = oom(s->ctx);
  else
    st = substitute(s, sink, &map, out);
done:
  free(ca.u);
  free(cb.u);
  lg_ptrmap_free(&map);
  graph_free(&g);
  return st;
}

/* two ranges of one kind trade axes */
static lg_status swap(scope *s, lg_uop *sink, int64_t a, int64_t b, lg_uop **out) {
  rinfo ra, rb;
  graph g;
  lg_ptrmap map = {0};
  lg_uop *na, *nb;
  int64_t aa[2] = {b, 0}, ab[2] = {a, 0};
  lg_status st = graph_of(s->ctx, sink, &g);
  if (!st && !(st = pair(s->ctx, &g, "swap", a, b, &ra, &rb))) {
    aa[1] = ra.kind, ab[1] = rb.kind;
    lg_arg arga = {.kind = LG_ARG_INTS, .n = 2, .ints = aa}, argb = {.kind = LG_ARG_INTS, .n = 2, .ints = ab};
    if (!(st = mk(s, LG_OP_RANGE, ra.node->dtype, ra.node->src, ra.node->nsrc, &arga, &na)) &&
        !(st = mk(s, LG_OP_RANGE, rb.node->dtype, rb.node->src, rb.node->nsrc, &argb, &nb))) {
      if (!lg_ptrmap_put(&map, ra.node, na) || !lg_ptrmap_put(&map, rb.node, nb))
        st = oom(s->ctx);
      else
        st = subst_graph(s, &g, &map, out);
    }
  }
  lg_ptrmap_free(&map);
  graph_free(&g);
  return st;
}

/* r := outer*width + lane, lane a RANGE of kind LANES; the ENDs or REDUCEs that closed r close
 * outer and lane */
static lg_status vectorize(scope *s, lg_uop *sink, int64_t axis, int64_t width, lg_uop **out) {
  rinfo r, *rs = NULL;
  int32_t nr = 0;
  graph g;
  list cl = {0};
  lg_ptrmap map = {0};
  lg_status st = graph_of(s->ctx, sink, &g);
  if (st) return st;
  if ((st = range_of(s->ctx, &g, axis, -1, "vectorize", &r))) goto done;
  if (width < 2 || width > LG_OPT_MAX_LANES || (width & (width - 1)) != 0) {
    st = fail(s->ctx, "vectorize: the width must be a power of 2 from 2 to %d, got %lld", LG_OPT_MAX_LANES,
              (long long)width);
    goto done;
  }
  if ((st = ranges(s->ctx, &g, &rs, &nr))) goto done;
  int64_t last = -1;
  for (int32_t i = 0; i < nr && !st; i++) {
    if (rs[i].kind == LG_RANGE_LANES)
      st = fail(s->ctx, "vectorize: the kernel has vector lanes already (axis %lld)", (long long)rs[i].axis);
    last = rs[i].axis > last ? rs[i].axis : last;
  }
  if (st) goto done;
  if (r.size % width != 0) {
    graph_free(&g);
    if ((st = pad(s, sink, axis, width, &sink)) || (st = graph_of(s->ctx, sink, &g)) ||
        (st = range_of(s->ctx, &g, axis, -1, "vectorize", &r)))
      goto done;
  }
  lg_uop *lane, *outer = NULL, *idx;
  if ((st = range_node(s, width, last + 1, LG_RANGE_LANES, &lane)) ||
      (r.size > width && (st = range_node(s, floordiv(r.size, width), axis, r.kind, &outer))) ||
      (st = closers(s->ctx, &g, r.node, r.kind == LG_RANGE_OUTPUT ? LG_OP_END : LG_OP_REDUCE, &cl)))
    goto done;
  for (int32_t c = 0; c < cl.n && !st; c++) {
    lg_uop *u = cl.u[c], *res;
    list src = {0};
    bool ok = true;
    for (int32_t j = 0; j < u->nsrc && ok; j++) {
      if (u->src[j] != r.node)
        ok = push(&src, u->src[j]);
      else if (outer)
        ok = push(&src, outer);
      if (j == u->nsrc - 1 && ok) ok = push(&src, lane);
    }
    st = !ok ? oom(s->ctx) : rebuild(s, u, src.u, src.n, &res);
    free(src.u);
    if (!st && !lg_ptrmap_put(&map, u, res)) st = oom(s->ctx);
  }
  if (st || (st = subst_graph(s, &g, &map, &sink))) goto done;
  idx = lane;
  if (outer && ((st = binc(s, LG_OP_MUL, outer, width, &idx)) || (st = bin(s, LG_OP_ADD, idx, lane, &idx)))) goto done;
  st = replace1(s, sink, r.node, idx, out);
done:
  free(rs);
  free(cl.u);
  lg_ptrmap_free(&map);
  graph_free(&g);
  return st;
}

/* ---- simplification and the lanes' canonical form ----------------------------------------- */

static lg_status simplify(scope *s, lg_ruleset *rs, lg_uop *x, lg_uop **out) {
  return keep(s, lg_graph_rewrite(s->ctx, x, rs, NULL, out), out);
}

/* Every INDEX whose index is `base + lane` once simplified (the lanes' coefficient in it is 1,
 * through +, - and * by a constant) gets exactly the form ADD(base, lane); `base + 2 * lane`
 * (a pooling's stride) gets ADD(base, MUL(lane, 2)), and `base + lane / 2` (its gradient: a
 * division by 2 of 2t + lane, t free of the lanes) ADD(base, IDIV(lane, 2)). */
static lg_status contiguous_lanes(scope *s, lg_ruleset *rs, lg_uop *sink, lg_uop **out) {
  graph g;
  rinfo *r = NULL;
  int32_t nr = 0;
  lg_uop *lane = NULL;
  uint8_t *dep = NULL, *ok = NULL, *even0 = NULL;
  int64_t *coef = NULL, *half = NULL;
  lg_ptrmap map = {0};
  lg_status st = graph_of(s->ctx, sink, &g);
  if (st) return st;
  if ((st = ranges(s->ctx, &g, &r, &nr))) goto done;
  for (int32_t i = 0; i < nr; i++)
    if (r[i].kind == LG_RANGE_LANES) lane = r[i].node;
  if (!lane) {
    *out = sink;
    goto done;
  }
  dep = malloc((size_t)g.n), ok = malloc((size_t)g.n), even0 = malloc((size_t)g.n);
  coef = malloc((size_t)g.n * sizeof *coef), half = malloc((size_t)g.n * sizeof *half);
  if (!dep || !ok || !even0 || !coef || !half) {
    st = oom(s->ctx);
    goto done;
  }
  dependents(g.u, g.n, &g.pos, lane, dep);
  for (int64_t i = 0; i < g.n; i++) { /* sources come first: their coefficients are known */
    const lg_uop *u = g.u[i];
    int64_t a = u->nsrc > 0 ? pos_of(&g, u->src[0]) : -1, b = u->nsrc > 1 ? pos_of(&g, u->src[1]) : -1;
    bool ca = u->nsrc > 0 && u->src[0]->op == LG_OP_CONST && u->src[0]->arg.kind == LG_ARG_INT,
         cb = u->nsrc > 1 && u->src[1]->op == LG_OP_CONST && u->src[1]->arg.kind == LG_ARG_INT;
    ok[i] = 1, coef[i] = u == lane ? 1 : 0, half[i] = 0;
    /* even0: the node is even once the lanes are 0 */
    even0[i] = u == lane || (u->op == LG_OP_CONST && u->arg.kind == LG_ARG_INT && u->arg.i % 2 == 0) ||
               (u->op == LG_OP_MUL && (even0[a] || even0[b])) ||
               ((u->op == LG_OP_ADD || u->op == LG_OP_SUB) && even0[a] && even0[b]);
    if (u == lane || !dep[i]) continue;
    if ((u->op == LG_OP_ADD || u->op == LG_OP_SUB) && ok[a] && ok[b]) {
      uint64_t sign = u->op == LG_OP_ADD ? 1 : (uint64_t)-1;
      coef[i] = (int64_t)((uint64_t)coef[a] + sign * (uint64_t)coef[b]);
      half[i] = (int64_t)((uint64_t)half[a] + sign * (uint64_t)half[b]);
    } else if (u->op == LG_OP_MUL && ok[a] && cb) {
      coef[i] = (int64_t)((uint64_t)coef[a] * (uint64_t)u->src[1]->arg.i);
      half[i] = (int64_t)((uint64_t)half[a] * (uint64_t)u->src[1]->arg.i);
    } else if (u->op == LG_OP_MUL && ok[b] && ca) {
      coef[i] = (int64_t)((uint64_t)coef[b] * (uint64_t)u->src[0]->arg.i);
      half[i] = (int64_t)((uint64_t)half[b] * (uint64_t)u->src[0]->arg.i);
    } else if (u->op == LG_OP_IDIV && ok[a] && cb && u->src[1]->arg.i == 2 && coef[a] == 1 && half[a] == 0 && even0[a] &&
               u->src[0]->has_bounds && u->src[0]->vmin >= 0) {
      coef[i] = 0, half[i] = 1; /* (2t + lane) / 2 = t + lane / 2 for 2t + lane >= 0 */
    } else {
      ok[i] = 0;
    }
  }
  lg_uop *zero;
  if ((st = iconst(s, 0, &zero))) goto done;
  for (int64_t i = 0; i < g.n && !st; i++) {
    lg_uop *u = g.u[i], *base, *src[3];
    int64_t p = u->op == LG_OP_INDEX && u->nsrc >= 2 ? pos_of(&g, u->src[1]) : -1;
    bool halves = p >= 0 && ok[p] && coef[p] == 0 && half[p] == 1;
    if (p < 0 || u->src[1] == lane || !ok[p] || (coef[p] != 1 && coef[p] != 2 && !halves)) continue;
    if ((st = replace1(s, u->src[1], lane, zero, &base)) || (st = simplify(s, rs, base, &base))) break;
    src[0] = u->src[0], src[2] = u->nsrc > 2 ? u->src[2] : NULL;
    lg_uop *add[2] = {base, lane};
    if (coef[p] == 2 || halves) { /* base + lane * 2: every other element of two vectors' worth;
                                     base + lane / 2: each element of half a vector twice */
      lg_uop *two[2] = {lane, NULL};
      if ((st = iconst(s, 2, &two[1])) || (st = mk(s, halves ? LG_OP_IDIV : LG_OP_MUL, LG_DT_INT32, two, 2, NULL, &add[1])))
        break;
    }
    if ((st = mk(s, LG_OP_ADD, LG_DT_INT32, add, 2, NULL, &src[1])) ||
        (st = rebuild(s, u, src, u->nsrc > 2 ? 3 : 2, &base)))
      break;
    if (!lg_ptrmap_put(&map, u, base)) st = oom(s->ctx);
  }
  if (!st) st = subst_graph(s, &g, &map, out);
done:
  free(r);
  free(dep);
  free(ok);
  free(even0);
  free(coef);
  free(half);
  lg_ptrmap_free(&map);
  graph_free(&g);
  return st;
}

/* ---- the public entry points ---------------------------------------------------------------- */

lg_status lg_opt_transform(lg_ctx *ctx, lg_uop *sink, const lg_opt_step *step, lg_uop **out) {
  *out = NULL;
  if (!sink || !step) return lg_ctx_fail(ctx, LG_ERR_ARG, "opt: no %s", sink ? "step" : "kernel");
  if (!lg_opt_name(step->op)) return lg_ctx_fail(ctx, LG_ERR_ARG, "opt: unknown transformation %d", step->op);
  scope s = {.ctx = ctx};
  lg_uop *r = NULL;
  lg_status st;
  switch (step->op) {
  case LG_OPT_MERGE: st = merge(&s, sink, step->x, step->y, &r); break;
  case LG_OPT_PAD: st = pad(&s, sink, step->x, step->y, &r); break;
  case LG_OPT_SWAP: st = swap(&s, sink, step->x, step->y, &r); break;
  case LG_OPT_VECTORIZE: st = vectorize(&s, sink, step->x, step->y, &r); break;
  default: st = split(&s, sink, step->op, step->x, step->y, &r); break;
  }
  if (!st) *out = lg_uop_retain(r);
  scope_free(&s);
  return st;
}

/* the steps (and with `finish`, the symbolic pass and the lanes' canonical form) */
static lg_status run(lg_ctx *ctx, lg_uop *sink, const lg_opt_step *steps, int32_t n, bool finish, lg_uop **out) {
  lg_ruleset *rs = NULL;
  lg_uop *cur = lg_uop_retain(sink), *next;
  lg_status st = LG_OK;
  *out = NULL;
  if (n < 0 || (n > 0 && !steps)) st = lg_ctx_fail(ctx, LG_ERR_ARG, "opt: apply: %d steps", n);
  for (int32_t i = 0; i < n && !st; i++) {
    if ((st = lg_opt_transform(ctx, cur, &steps[i], &next))) break;
    lg_uop_release(cur);
    cur = next;
    if (steps[i].op == LG_OPT_MERGE && (rs || !(st = lg_pass(ctx, "symbolic", &rs)))) {
      if (!(st = lg_graph_rewrite(ctx, cur, rs, NULL, &next))) lg_uop_release(cur), cur = next;
    }
  }
  if (!st && finish && (rs || !(st = lg_pass(ctx, "symbolic", &rs)))) {
    scope s = {.ctx = ctx};
    lg_uop *simple;
    if (!(st = simplify(&s, rs, cur, &simple)) && !(st = contiguous_lanes(&s, rs, simple, &next))) {
      lg_uop_release(cur);
      cur = lg_uop_retain(next);
    }
    scope_free(&s);
  }
  if (rs) lg_ruleset_release(rs);
  if (st)
    lg_uop_release(cur);
  else
    *out = cur;
  return st;
}

lg_status lg_opt_steps(lg_ctx *ctx, lg_uop *sink, const lg_opt_step *steps, int32_t n, lg_uop **out) {
  if (!sink) return *out = NULL, lg_ctx_fail(ctx, LG_ERR_ARG, "opt: no kernel");
  return run(ctx, sink, steps, n, false, out);
}

lg_status lg_opt_apply(lg_ctx *ctx, lg_uop *sink, const lg_opt_step *steps, int32_t n, lg_uop **out) {
  if (!sink) return *out = NULL, lg_ctx_fail(ctx, LG_ERR_ARG, "opt: no kernel");
  return run(ctx, sink, steps, n, true, out);
}
