/* linearize.c: a kernel graph as a flat list of instructions with explicit loops (see
 * linearize.h).
 *
 * Steps: sort the nodes (sources first); number the ranges by axis; compute for each node the
 * set of ranges it is inside (bitsets, one bit per range); build the loop tree from those sets;
 * check the rules of docs/kernel_ir.md; schedule. Scheduling is per loop body: every item (a
 * node, a REDUCE's update, or a whole loop) lives in one body; a dependency between items of
 * different bodies becomes one between their ancestors in the innermost body that holds both,
 * and each body is ordered by Kahn's algorithm with the graph order as priority. Everything is
 * iterative: no recursion on the graph's depth. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linearize.h"
#include "ptrmap.h"

typedef struct lin {
  lg_ctx *ctx;
  int64_t n; /* nodes, sources first */
  lg_uop **nodes;
  lg_ptrmap pos;     /* node -> its index + 1 */
  int32_t nr, words; /* ranges; 64-bit words of a range set */
  int64_t *rpos;     /* per range (in axis order): the index of its RANGE node */
  int32_t *rid;      /* per node: its range number, or -1 */
  uint64_t *live;    /* per node: the ranges it is inside */
  uint64_t *closes;  /* per node: the ranges a REDUCE or an END closes */
  uint64_t *req;     /* per range: ranges that must enclose it */
  uint64_t *anc;     /* per range: itself and the ranges around it */
  int32_t *parent;   /* per range: the range around it, or -1 */
  int32_t *depth;    /* per body (0: top level, r + 1: inside range r): loops around it */
  /* items: node i is item i (for a RANGE, its whole loop; for a REDUCE, its INIT); the update
   * of the k-th REDUCE is item n + k */
  int64_t nitems;
  int64_t *upd;                   /* per node: a REDUCE's update item, else -1 */
  int64_t *owner;                 /* per update item (index - n): its REDUCE */
  int32_t *body;                  /* per item: the body it lives in */
  int64_t *efrom, *eto, ne, ecap; /* edges "from before to", both items of one body */
} lin;

const char *lg_lin_describe(const lg_uop *u, char *buf, size_t size) {
  char dt[48] = "";
  if (u->dtype != LG_DT_VOID) lg_dtype_name(u->dtype, dt, sizeof dt);
  int k = snprintf(buf, size, "%s%s%s", lg_op_name(u->op), dt[0] ? " " : "", dt);
  size_t used = k < 0 ? 0 : (size_t)k < size ? (size_t)k : size - 1;
  const lg_arg *a = &u->arg;
  if (u->op == LG_OP_RANGE && a->kind == LG_ARG_INTS && a->n >= 1)
    snprintf(buf + used, size - used, " (axis %lld)", (long long)a->ints[0]);
  else if (u->op == LG_OP_DEFINE_GLOBAL && a->kind == LG_ARG_INT)
    snprintf(buf + used, size - used, " (slot %lld)", (long long)a->i);
  else if (a->kind == LG_ARG_STR || a->kind == LG_ARG_STR_INTS)
    snprintf(buf + used, size - used, " %s", a->s);
  return buf;
}

static lg_status fail(lin *L, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return lg_ctx_fail(L->ctx, LG_ERR_SPEC, "linearize: %s", msg);
}

static lg_status nomem(lin *L) { return lg_ctx_fail(L->ctx, LG_ERR_NOMEM, "linearize: out of memory"); }

/* ---- range sets ------------------------------------------------------------------------------ */

static uint64_t *set_of(const lin *L, uint64_t *base, int64_t i) { return base + i * L->words; }
static bool has(const uint64_t *s, int32_t b) { return (s[b >> 6] >> (b & 63)) & 1; }
static void add(uint64_t *s, int32_t b) { s[b >> 6] |= UINT64_C(1) << (b & 63); }

/* The innermost range of a set (the largest axis), or -1 for none. */
static int32_t top(const lin *L, const uint64_t *s) {
  for (int32_t w = L->words - 1; w >= 0; w--)
    if (s[w]) return w * 64 + 63 - __builtin_clzll(s[w]);
  return -1;
}

static int32_t count(const lin *L, const uint64_t *s) {
  int32_t c = 0;
  for (int32_t w = 0; w < L->words; w++) c += __builtin_popcountll(s[w]);
  return c;
}

/* The first range in a and b, or -1. */
static int32_t first_common(const lin *L, const uint64_t *a, const uint64_t *b) {
  for (int32_t r = 0; r < L->nr; r++)
    if (has(a, r) && has(b, r)) return r;
  return -1;
}

static long long axis_of(const lin *L, int32_t r) { return (long long)L->nodes[L->rpos[r]]->arg.ints[0]; }

/* ---- checks of the ops ----------------------------------------------------------------------- */

static bool is_effect(int32_t op) { return op == LG_OP_STORE || op == LG_OP_END || op == LG_OP_GROUP; }

static lg_status check_ops(lin *L, lg_uop *sink) {
  char d[96], e[96];
  for (int64_t i = 0; i < L->n; i++) {
    lg_uop *u = L->nodes[i];
    switch (u->op) {
    case LG_OP_SINK:
      if (u != sink) return fail(L, "a SINK inside the kernel, under another node");
      /* fallthrough */
    case LG_OP_GROUP:
      for (int32_t k = 0; k < u->nsrc; k++)
        if (!is_effect(u->src[k]->op))
          return fail(L, "%s: source %d is %s, not an effect (STORE, END or GROUP)", lg_lin_describe(u, d, sizeof d), k,
                      lg_lin_describe(u->src[k], e, sizeof e));
      break;
    case LG_OP_RANGE:
      if (u->arg.kind != LG_ARG_INTS || u->arg.n != 2)
        return fail(L, "%s: the arg must be {axis, kind}", lg_lin_describe(u, d, sizeof d));
      break;
    case LG_OP_END:
      if (!is_effect(u->src[0]->op))
        return fail(L, "%s: closes %s; its first source must be a STORE, an END or a GROUP",
                    lg_lin_describe(u, d, sizeof d), lg_lin_describe(u->src[0], e, sizeof e));
      /* fallthrough */
    case LG_OP_REDUCE:
      for (int32_t k = 1; k < u->nsrc; k++)
        if (u->src[k]->op != LG_OP_RANGE)
          return fail(L, "%s: source %d is %s, not a RANGE", lg_lin_describe(u, d, sizeof d), k,
                      lg_lin_describe(u->src[k], e, sizeof e));
      break;
    case LG_OP_STORE:
    case LG_OP_LOAD:
    case LG_OP_INDEX:
    case LG_OP_CONST:
    case LG_OP_DEFINE_GLOBAL:
    case LG_OP_DEFINE_VAR:
    case LG_OP_CAST:
    case LG_OP_BITCAST: break;
    default:
      if (!lg_op_has(u->op, LG_OPF_ALU))
        return fail(L, "%s is not a kernel op the linearizer knows (docs/kernel_ir.md)",
                    lg_lin_describe(u, d, sizeof d));
    }
  }
  return LG_OK;
}

/* ---- ranges, the sets of ranges each node is inside, the loop tree ---------------------------- */

typedef struct {
  int64_t axis, pos;
} axis_pos;

static int by_axis(const void *a, const void *b) {
  const axis_pos *x = a, *y = b;
  return x->axis < y->axis ? -1 : x->axis > y->axis ? 1 : (x->pos > y->pos) - (x->pos < y->pos);
}

/* a RANGE that is a loop: not the vector lanes (kind 2), which renderers compute all at once */
static bool is_loop(const lg_uop *u) { return u->op == LG_OP_RANGE && u->arg.ints[1] != LG_RANGE_LANES; }

static lg_status number_ranges(lin *L) {
  char d[96], e[96];
  for (int64_t i = 0; i < L->n; i++) L->nr += is_loop(L->nodes[i]);
  axis_pos *ap = malloc(((size_t)L->nr + 1) * sizeof *ap);
  L->rpos = malloc(((size_t)L->nr + 1) * sizeof *L->rpos);
  L->rid = malloc((size_t)L->n * sizeof *L->rid);
  if (!ap || !L->rpos || !L->rid) return free(ap), nomem(L);
  for (int64_t i = 0, k = 0; i < L->n; i++) {
    L->rid[i] = -1;
    if (is_loop(L->nodes[i])) ap[k++] = (axis_pos){L->nodes[i]->arg.ints[0], i};
  }
  qsort(ap, (size_t)L->nr, sizeof *ap, by_axis);
  for (int32_t r = 0; r < L->nr; r++) {
    if (r > 0 && ap[r].axis == ap[r - 1].axis) {
      lg_status st = fail(L, "%s and %s have the same axis; every RANGE of a kernel needs its own",
                          lg_lin_describe(L->nodes[ap[r - 1].pos], d, sizeof d),
                          lg_lin_describe(L->nodes[ap[r].pos], e, sizeof e));
      free(ap);
      return st;
    }
    L->rpos[r] = ap[r].pos;
    L->rid[ap[r].pos] = r;
  }
  free(ap);
  return LG_OK;
}

static int64_t index_of(const lin *L, const lg_uop *u) {
  void *v = NULL;
  lg_ptrmap_get(&L->pos, u, &v);
  return (int64_t)(intptr_t)v - 1;
}

/* Every range in chain c must enclose the ranges of c with larger axes. */
static void require_chain(lin *L, const uint64_t *c) {
  for (int32_t b = 0; b < L->nr; b++) {
    if (!has(c, b)) continue;
    uint64_t *req = set_of(L, L->req, b);
    for (int32_t w = 0; w <= b >> 6; w++) {
      uint64_t below = w < b >> 6 ? ~UINT64_C(0) : (UINT64_C(1) << (b & 63)) - 1;
      req[w] |= c[w] & below;
    }
  }
}

static lg_status build_tree(lin *L) {
  size_t w = (size_t)L->words;
  L->live = calloc((size_t)L->n * w, sizeof *L->live);
  L->closes = calloc((size_t)L->n * w, sizeof *L->closes);
  L->req = calloc((size_t)L->nr * w + 1, sizeof *L->req);
  L->anc = calloc((size_t)L->nr * w + 1, sizeof *L->anc);
  L->parent = malloc(((size_t)L->nr + 1) * sizeof *L->parent);
  L->depth = malloc(((size_t)L->nr + 1) * sizeof *L->depth);
  uint64_t *chain = malloc(w * sizeof *chain);
  if (!L->live || !L->closes || !L->req || !L->anc || !L->parent || !L->depth || !chain) return free(chain), nomem(L);
  for (int64_t i = 0; i < L->n; i++) {
    lg_uop *u = L->nodes[i];
    uint64_t *s = set_of(L, L->live, i), *cl = set_of(L, L->closes, i);
    for (int32_t k = 0; k < u->nsrc; k++) {
      const uint64_t *t = set_of(L, L->live, index_of(L, u->src[k]));
      for (int32_t j = 0; j < L->words; j++) s[j] |= t[j];
    }
    if (is_loop(u)) add(s, L->rid[i]);
    if (u->op == LG_OP_REDUCE || u->op == LG_OP_END) {
      for (int32_t k = 1; k < u->nsrc; k++)
        if (is_loop(u->src[k])) add(cl, L->rid[index_of(L, u->src[k])]);
      for (int32_t j = 0; j < L->words; j++) s[j] &= ~cl[j];
    }
    /* the node's ranges nest; a REDUCE's update is inside its own ranges too */
    for (int32_t j = 0; j < L->words; j++) chain[j] = s[j] | (u->op == LG_OP_REDUCE ? cl[j] : 0);
    require_chain(L, chain);
  }
  free(chain);
  /* the tree: a range's parent is the innermost range that must enclose it; what must enclose
   * a range must also enclose its parent (axes grow inwards) */
  for (int32_t b = L->nr - 1; b >= 0; b--) {
    uint64_t *req = set_of(L, L->req, b);
    int32_t p = top(L, req);
    L->parent[b] = p;
    if (p < 0) continue;
    uint64_t *preq = set_of(L, L->req, p);
    for (int32_t j = 0; j < L->words; j++) preq[j] |= req[j];
    preq[p >> 6] &= ~(UINT64_C(1) << (p & 63));
  }
  L->depth[0] = 0;
  for (int32_t b = 0; b < L->nr; b++) {
    uint64_t *a = set_of(L, L->anc, b);
    int32_t p = L->parent[b];
    if (p >= 0) memcpy(a, set_of(L, L->anc, p), w * sizeof *a);
    add(a, b);
    L->depth[b + 1] = L->depth[p + 1] + 1;
  }
  return LG_OK;
}

/* ---- the rules of docs/kernel_ir.md ------------------------------------------------------------ */

static lg_status check_reduce(lin *L, int64_t i) {
  char d[96];
  lg_uop *u = L->nodes[i];
  const uint64_t *live = set_of(L, L->live, i), *cl = set_of(L, L->closes, i);
  int32_t inner = top(L, live), steps = 0;
  /* from the update's loop out to the accumulator's: exactly the REDUCE's own ranges */
  int32_t b = top(L, cl) > inner ? top(L, cl) : inner;
  for (; b != inner; b = L->parent[b], steps++)
    if (!has(cl, b))
      return fail(L,
                  "%s: ranges cannot nest: its update would run inside RANGE axis %lld, which it does not reduce over"
                  " (another node nests that loop around a range it reduces over)",
                  lg_lin_describe(u, d, sizeof d), axis_of(L, b));
  if (steps == count(L, cl)) return LG_OK;
  int32_t r = first_common(L, cl, set_of(L, L->anc, inner));
  return fail(L,
              "%s: ranges cannot nest: it reduces over RANGE axis %lld, which would open outside RANGE axis %lld"
              " that its result is inside (loops nest by increasing axis: reduce ranges need larger axes)",
              lg_lin_describe(u, d, sizeof d), axis_of(L, r), axis_of(L, inner));
}

static lg_status check_end(lin *L, int64_t i) {
  char d[96], e[96];
  lg_uop *u = L->nodes[i];
  const uint64_t *cl = set_of(L, L->closes, i), *x = set_of(L, L->live, index_of(L, u->src[0]));
  for (int32_t r = 0; r < L->nr; r++)
    if (has(cl, r) && !has(x, r))
      return fail(L,
                  "%s: %s is outside RANGE axis %lld, which the END closes (a STORE must depend on every range its"
                  " END closes)",
                  lg_lin_describe(u, d, sizeof d), lg_lin_describe(u->src[0], e, sizeof e), axis_of(L, r));
  int32_t inner = top(L, set_of(L, L->live, i));
  int32_t r = inner < 0 ? -1 : first_common(L, cl, set_of(L, L->anc, inner));
  if (r >= 0)
    return fail(L,
                "%s: ranges cannot nest: it closes RANGE axis %lld, but its source also depends on RANGE axis %lld,"
                " which is inside that loop",
                lg_lin_describe(u, d, sizeof d), axis_of(L, r), axis_of(L, inner));
  return LG_OK;
}

static lg_status check_rules(lin *L) {
  char d[96];
  lg_status st = LG_OK;
  for (int64_t i = 0; i < L->n && !st; i++) {
    lg_uop *u = L->nodes[i];
    if (u->op == LG_OP_REDUCE)
      st = check_reduce(L, i);
    else if (u->op == LG_OP_END)
      st = check_end(L, i);
    else if (u->op == LG_OP_SINK && top(L, set_of(L, L->live, i)) >= 0)
      st = fail(L, "%s: RANGE axis %lld is never closed (by an END or a REDUCE)", lg_lin_describe(u, d, sizeof d),
                axis_of(L, top(L, set_of(L, L->live, i))));
  }
  return st;
}

/* ---- items, and dependencies between items of one body ---------------------------------------- */

static int32_t item_body(const lin *L, int64_t item) { return L->body[item]; }

/* the item of the loop that is body b */
static int64_t block_item(const lin *L, int32_t b) { return L->rpos[b - 1]; }

/* "a before b", lifted to the innermost body that holds both */
static lg_status add_edge(lin *L, int64_t a, int64_t b) {
  int32_t la = item_body(L, a), lb = item_body(L, b);
  while (L->depth[la] > L->depth[lb]) a = block_item(L, la), la = item_body(L, a);
  while (L->depth[lb] > L->depth[la]) b = block_item(L, lb), lb = item_body(L, b);
  while (la != lb) {
    a = block_item(L, la), la = item_body(L, a);
    b = block_item(L, lb), lb = item_body(L, b);
  }
  if (a == b) return LG_OK;
  if (L->ne == L->ecap) {
    int64_t cap = L->ecap ? L->ecap * 2 : 256;
    int64_t *f = realloc(L->efrom, (size_t)cap * sizeof *f);
    if (f) L->efrom = f;
    int64_t *t = f ? realloc(L->eto, (size_t)cap * sizeof *t) : NULL;
    if (!t) return nomem(L);
    L->eto = t, L->ecap = cap;
  }
  L->efrom[L->ne] = a, L->eto[L->ne++] = b;
  return LG_OK;
}

static lg_status make_items(lin *L) {
  char d[96], e[96];
  int64_t nred = 0;
  for (int64_t i = 0; i < L->n; i++) nred += L->nodes[i]->op == LG_OP_REDUCE;
  L->nitems = L->n + nred;
  L->upd = malloc((size_t)L->n * sizeof *L->upd);
  L->owner = malloc(((size_t)nred + 1) * sizeof *L->owner);
  L->body = malloc((size_t)L->nitems * sizeof *L->body);
  uint64_t *both = malloc((size_t)L->words * sizeof *both);
  if (!L->upd || !L->owner || !L->body || !both) return free(both), nomem(L);
  for (int64_t i = 0, k = 0; i < L->n; i++) {
    lg_uop *u = L->nodes[i];
    const uint64_t *live = set_of(L, L->live, i), *cl = set_of(L, L->closes, i);
    L->upd[i] = -1;
    L->body[i] = (is_loop(u) ? L->parent[L->rid[i]] : top(L, live)) + 1;
    if (u->op != LG_OP_REDUCE) continue;
    for (int32_t j = 0; j < L->words; j++) both[j] = live[j] | cl[j];
    L->upd[i] = L->n + k;
    L->owner[k] = i;
    L->body[L->n + k++] = top(L, both) + 1;
  }
  free(both);
  lg_status st = LG_OK;
  for (int64_t i = 0; i < L->n && !st; i++) {
    lg_uop *u = L->nodes[i];
    int64_t consumer = u->op == LG_OP_REDUCE ? L->upd[i] : i;
    int32_t cb = item_body(L, consumer);
    for (int32_t k = 0; k < u->nsrc && !st; k++) {
      int64_t j = index_of(L, u->src[k]);
      int32_t op = L->nodes[j]->op;
      /* a REDUCE's value and an END's effect exist once their loops are done */
      if ((op == LG_OP_REDUCE || op == LG_OP_END) && cb > 0) {
        int32_t r = first_common(L, set_of(L, L->closes, j), set_of(L, L->anc, cb - 1));
        if (r >= 0)
          return fail(L, "%s uses %s inside the loop of RANGE axis %lld, which that %s closes",
                      lg_lin_describe(u, d, sizeof d), lg_lin_describe(L->nodes[j], e, sizeof e), axis_of(L, r),
                      lg_op_name(op));
      }
      st = add_edge(L, op == LG_OP_REDUCE ? L->upd[j] : j, consumer);
    }
    if (!st && u->op == LG_OP_REDUCE) st = add_edge(L, i, L->upd[i]);
  }
  return st;
}

/* ---- scheduling: Kahn's algorithm per body, graph order first --------------------------------- */

typedef struct sched {
  int64_t *prio;                /* per item */
  int64_t *heap;                /* per body: a min-heap of ready items at [hoff[b], hoff[b] + hsize[b]) */
  int64_t *hoff, *hsize, *left; /* left: items of the body not emitted yet */
  int64_t *indeg, *eoff, *adj;
} sched;

static void heap_push(sched *s, int32_t b, int64_t item) {
  int64_t *h = s->heap + s->hoff[b], i = s->hsize[b]++;
  for (; i > 0 && s->prio[h[(i - 1) / 2]] > s->prio[item]; i = (i - 1) / 2) h[i] = h[(i - 1) / 2];
  h[i] = item;
}

static int64_t heap_pop(sched *s, int32_t b) {
  int64_t *h = s->heap + s->hoff[b], top_item = h[0], last = h[--s->hsize[b]], n = s->hsize[b], i = 0;
  for (;;) {
    int64_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && s->prio[h[c + 1]] < s->prio[h[c]]) c++;
    if (s->prio[h[c]] >= s->prio[last]) break;
    h[i] = h[c], i = c;
  }
  h[i] = last;
  return top_item;
}

/* an item is done: its followers may become ready */
static void release(const lin *L, sched *s, int64_t item) {
  for (int64_t e = s->eoff[item]; e < s->eoff[item + 1]; e++)
    if (--s->indeg[s->adj[e]] == 0) heap_push(s, item_body(L, s->adj[e]), s->adj[e]);
}

/* "the loop of RANGE axis 1" or "MUL float32" */
static const char *item_name(const lin *L, int64_t it, char *buf, size_t size) {
  if (it < L->n && is_loop(L->nodes[it]))
    snprintf(buf, size, "the loop of RANGE axis %lld", (long long)L->nodes[it]->arg.ints[0]);
  else
    lg_lin_describe(L->nodes[it < L->n ? it : L->owner[it - L->n]], buf, size);
  return buf;
}

/* Body b has items left and none ready: they wait on each other. Walk back through items not
 * done yet (each has one) until the walk repeats, and name that cycle. */
static lg_status stuck(lin *L, sched *s, int32_t b) {
  int64_t *pred = malloc((size_t)L->nitems * sizeof *pred), x = -1;
  if (!pred) return nomem(L);
  for (int64_t e = 0; e < L->ne; e++)
    if (s->indeg[L->efrom[e]] > 0) pred[L->eto[e]] = L->efrom[e];
  for (int64_t it = 0; it < L->nitems && x < 0; it++)
    if (item_body(L, it) == b && s->indeg[it] > 0) x = it;
  for (int64_t k = 0; k < s->left[b]; k++) x = pred[x]; /* now on the cycle */
  char msg[512], name[96];
  size_t len = 0;
  int64_t y = x;
  for (int k = 0; k < 4 && (k == 0 || y != x); k++, y = pred[y])
    len +=
        (size_t)snprintf(msg + len, sizeof msg - len, "%s%s", k ? " needs " : "", item_name(L, y, name, sizeof name));
  snprintf(msg + len, sizeof msg - len, y == x ? " needs %s" : " ...", item_name(L, x, name, sizeof name));
  free(pred);
  return fail(L, "cannot order the loops: %s (is a range used again after a REDUCE or an END closed it?)", msg);
}

static lg_status emit(lin *L, lg_linear *out) {
  int32_t nb = L->nr + 1;
  sched s = {0};
  s.prio = malloc((size_t)L->nitems * sizeof *s.prio);
  s.heap = malloc((size_t)L->nitems * sizeof *s.heap);
  s.indeg = calloc((size_t)L->nitems, sizeof *s.indeg);
  s.eoff = calloc((size_t)L->nitems + 1, sizeof *s.eoff);
  s.adj = malloc(((size_t)L->ne + 1) * sizeof *s.adj);
  s.hoff = calloc((size_t)nb + 1, sizeof *s.hoff);
  s.hsize = calloc((size_t)nb, sizeof *s.hsize);
  s.left = calloc((size_t)nb, sizeof *s.left);
  int32_t *stack = malloc((size_t)nb * sizeof *stack);
  out->inst = malloc(((size_t)L->nitems + (size_t)L->nr) * sizeof *out->inst);
  lg_status st = LG_OK;
  if (!s.prio || !s.heap || !s.indeg || !s.eoff || !s.adj || !s.hoff || !s.hsize || !s.left || !stack || !out->inst) {
    st = nomem(L);
    goto done;
  }
  for (int64_t it = 0; it < L->nitems; it++) {
    s.prio[it] = it < L->n ? it : L->owner[it - L->n];
    s.left[item_body(L, it)]++;
  }
  for (int32_t b = 0; b < nb; b++) s.hoff[b + 1] = s.hoff[b] + s.left[b];
  for (int64_t e = 0; e < L->ne; e++) s.eoff[L->efrom[e] + 1]++, s.indeg[L->eto[e]]++;
  for (int64_t it = 0; it < L->nitems; it++) s.eoff[it + 1] += s.eoff[it];
  int64_t *fill = s.heap; /* borrowed as the write cursor per item before the heaps exist */
  for (int64_t it = 0; it < L->nitems; it++) fill[it] = s.eoff[it];
  for (int64_t e = 0; e < L->ne; e++) s.adj[fill[L->efrom[e]]++] = L->eto[e];
  for (int64_t it = 0; it < L->nitems; it++)
    if (s.indeg[it] == 0) heap_push(&s, item_body(L, it), it);

  int32_t sp = 0;
  stack[sp++] = 0;
  while (sp > 0) {
    int32_t b = stack[sp - 1], depth = sp - 1;
    if (s.hsize[b] == 0) {
      if (s.left[b]) {
        st = stuck(L, &s, b);
        goto done;
      }
      sp--;
      if (b > 0) {
        out->inst[out->n++] = (lg_lin_inst){LG_LIN_CLOSE, depth - 1, L->nodes[block_item(L, b)]};
        release(L, &s, block_item(L, b));
      }
      continue;
    }
    int64_t it = heap_pop(&s, b);
    s.left[b]--;
    lg_uop *u = L->nodes[it < L->n ? it : L->owner[it - L->n]];
    if (it < L->n && is_loop(u)) {
      out->inst[out->n++] = (lg_lin_inst){LG_LIN_OPEN, depth, u};
      stack[sp++] = L->rid[it] + 1;
      continue;
    }
    int32_t kind = it >= L->n ? LG_LIN_UPDATE : u->op == LG_OP_REDUCE ? LG_LIN_INIT : LG_LIN_NODE;
    out->inst[out->n++] = (lg_lin_inst){kind, depth, u};
    release(L, &s, it);
  }
done:
  free(s.prio), free(s.heap), free(s.indeg), free(s.eoff), free(s.adj), free(s.hoff), free(s.hsize), free(s.left);
  free(stack);
  return st;
}

/* ---- entry ------------------------------------------------------------------------------------ */

static void lin_free(lin *L) {
  free(L->nodes);
  lg_ptrmap_free(&L->pos);
  free(L->rpos), free(L->rid), free(L->live), free(L->closes), free(L->req), free(L->anc), free(L->parent);
  free(L->depth), free(L->upd), free(L->owner), free(L->body), free(L->efrom), free(L->eto);
}

lg_status lg_linearize(lg_ctx *ctx, lg_uop *sink, lg_linear *out) {
  char d[96];
  *out = (lg_linear){0};
  if (!sink || sink->op != LG_OP_SINK)
    return lg_ctx_fail(ctx, LG_ERR_ARG, "linearize: the root must be a SINK, got %s",
                       sink ? lg_lin_describe(sink, d, sizeof d) : "nothing");
  lin L = {.ctx = ctx};
  lg_status st = LG_OK;
  L.n = lg_uop_toposort(sink, NULL, 0);
  if (L.n < 0 || !(L.nodes = malloc((size_t)L.n * sizeof *L.nodes)) || lg_uop_toposort(sink, L.nodes, L.n) != L.n) {
    st = nomem(&L);
    goto done;
  }
  for (int64_t i = 0; i < L.n && !st; i++)
    if (!lg_ptrmap_put(&L.pos, L.nodes[i], (void *)(intptr_t)(i + 1))) st = nomem(&L);
  if (!st) st = check_ops(&L, sink);
  if (!st) st = number_ranges(&L);
  L.words = L.nr / 64 + 1;
  if (!st) st = build_tree(&L);
  if (!st) st = check_rules(&L);
  if (!st) st = make_items(&L);
  if (!st) st = emit(&L, out);
done:
  lin_free(&L);
  if (st) lg_linear_free(out);
  return st;
}

void lg_linear_free(lg_linear *l) {
  free(l->inst);
  *l = (lg_linear){0};
}

/* ---- the loop split over the cores ------------------------------------------------------------- */

static int64_t sat_mul(int64_t a, int64_t b) { return a > 0 && b > INT64_MAX / a ? INT64_MAX : a * b; }

/* a loop's iterations: the upper bound of its end */
static int64_t trip_count(const lg_uop *range) {
  int64_t lo, hi;
  return !lg_uop_bounds(range->src[0], &lo, &hi) ? INT32_MAX : hi > 0 ? hi : 0;
}

static bool is_work(const lg_lin_inst *in) {
  if (in->kind == LG_LIN_UPDATE) return true;
  if (in->kind != LG_LIN_NODE) return false;
  switch (in->u->op) {
  case LG_OP_CONST:
  case LG_OP_INDEX:
  case LG_OP_DEFINE_GLOBAL:
  case LG_OP_DEFINE_VAR:
  case LG_OP_END:
  case LG_OP_GROUP:
  case LG_OP_SINK: return false;
  default: return true;
  }
}

lg_status lg_lin_split(lg_ctx *ctx, const lg_linear *L, int64_t *open_at, int64_t *trips, int64_t *work_out) {
  int64_t open = -1, close = -1;
  *open_at = -1, *trips = *work_out = 0;
  for (int64_t k = 0; k < L->n && open < 0; k++)
    if (L->inst[k].kind == LG_LIN_OPEN && L->inst[k].depth == 0 && L->inst[k].u->arg.ints[1] == 0) open = k;
  if (open < 0) return LG_OK;
  const lg_uop *loop = L->inst[open].u;
  for (close = open + 1; L->inst[close].kind != LG_LIN_CLOSE || L->inst[close].u != loop;) close++;
  int32_t maxdepth = 0;
  for (int64_t k = 0; k < L->n; k++) {
    const lg_lin_inst *in = &L->inst[k];
    maxdepth = in->depth > maxdepth ? in->depth : maxdepth;
    if (k > open && k < close) continue;
    if (in->kind == LG_LIN_NODE && in->u->op == LG_OP_STORE) return LG_OK;
    if (in->kind == LG_LIN_INIT)
      for (int32_t i = 1; i < in->u->nsrc; i++)
        if (in->u->src[i] == loop) return LG_OK;
  }
  /* per[d]: how often a node at depth d runs in one iteration of the split loop */
  int64_t *per = malloc(((size_t)maxdepth + 2) * sizeof *per), work = 0;
  if (!per) return lg_ctx_fail(ctx, LG_ERR_NOMEM, "linearize: out of memory");
  per[1] = 1;
  for (int64_t k = open + 1; k < close; k++) {
    const lg_lin_inst *in = &L->inst[k];
    if (in->kind == LG_LIN_OPEN) per[in->depth + 1] = sat_mul(per[in->depth], trip_count(in->u));
    else if (is_work(in)) work = work > INT64_MAX - per[in->depth] ? INT64_MAX : work + per[in->depth];
  }
  free(per);
  for (int64_t k = 0; k < L->n; k++) /* vector lanes: each operation does the work of `lanes` */
    if (L->inst[k].kind == LG_LIN_NODE && L->inst[k].u->op == LG_OP_RANGE)
      work = sat_mul(work, trip_count(L->inst[k].u));
  *open_at = open;
  *trips = trip_count(loop);
  *work_out = work > 0 ? work : 1;
  return LG_OK;
}

/* ---- what a renderer of scalar kernels takes ------------------------------------------------ */

/* whether g is one of the conjuncts of the tree of ANDs at c */
static bool conjunct(const lg_uop *c, const lg_uop *g) {
  const lg_uop *stack[32];
  int32_t sp = 0;
  stack[sp++] = c;
  while (sp > 0) {
    const lg_uop *x = stack[--sp];
    if (x == g) return true;
    if (x->op == LG_OP_AND && sp + 2 <= 32) stack[sp++] = x->src[0], stack[sp++] = x->src[1];
  }
  return false;
}

/* a LOAD that reads 0 wherever g is false (g is a conjunct of its gate; its alternative is 0) */
static bool zero_off(const lg_uop *x, const lg_uop *g) {
  if (x->op != LG_OP_LOAD || x->src[0]->nsrc < 3) return false;
  if (x->nsrc > 1 && !(x->src[1]->op == LG_OP_CONST && x->src[1]->arg.f == 0.0)) return false;
  return conjunct(x->src[0]->src[2], g);
}

/* WHERE(g, a * b, 0) with a and b loads that read 0 where g is false (opt.pad's guard of a padded
 * reduce range over two gated loads, a convolution's weight gradient): a * b is that value, and
 * the product (else NULL) */
static const lg_uop *guarded_product(const lg_uop *x) {
  if (x->op != LG_OP_WHERE) return NULL;
  const lg_uop *g = x->src[0], *p = x->src[1], *z = x->src[2];
  if (p->op != LG_OP_MUL || z->op != LG_OP_CONST || z->arg.f != 0.0) return NULL;
  return zero_off(p->src[0], g) && zero_off(p->src[1], g) ? p : NULL;
}

int32_t lg_lin_fma_terms(const lg_uop *u, int32_t (*users)(const void *ctx, const lg_uop *x), const void *ctx,
                         const lg_uop **terms, bool *fused) {
  int32_t dt = lg_dt_scalar_id(u->dtype);
  if (lg_lin_reduce_op(u) != LG_OP_ADD || (dt != LG_DT_FLOAT32 && dt != LG_DT_FLOAT64)) return 0;
  const lg_uop *stack[LG_LIN_FMA_TERMS];
  int32_t sp = 0, n = 0;
  stack[sp++] = u->src[0];
  while (sp > 0) {
    const lg_uop *x = stack[--sp];
    bool own = x == u->src[0] || users(ctx, x) == 1;
    if (x->op == LG_OP_ADD && own && sp + 2 <= LG_LIN_FMA_TERMS) {
      stack[sp++] = x->src[1], stack[sp++] = x->src[0]; /* src[0]'s terms come first */
      continue;
    }
    if (n == LG_LIN_FMA_TERMS) return 0;
    const lg_uop *p = own ? guarded_product(x) : NULL;
    fused[n] = p || (x->op == LG_OP_MUL && own);
    terms[n++] = p ? p : x;
  }
  return n;
}

/* ---- vector lanes ------------------------------------------------------------------------------ */

static lg_status lanes_fail(lg_ctx *ctx, const char *who, const lg_uop *u, const char *msg) {
  char d[96];
  return lg_ctx_fail(ctx, LG_ERR_SPEC, "%s: %s: %s", who, lg_lin_describe(u, d, sizeof d), msg);
}

bool lg_lin_has_slot(int32_t kind) { return kind != LG_LIN_CLOSE && kind != LG_LIN_UPDATE; }

void lg_lin_lanes_free(lg_lin_lanes *l) {
  free(l->vec), free(l->vacc), free(l->finish_at), free(l->finishing);
  *l = (lg_lin_lanes){0};
}

/* Nodes come in loop order, where a REDUCE's INIT may precede its value's node: the pass repeats
 * until nothing changes. */
lg_status lg_lin_lanes_of(lg_ctx *ctx, const lg_linear *L, int64_t nslots,
                          int64_t (*slot)(const void *ctx, const lg_uop *u), const void *sctx, const char *who,
                          lg_lin_lanes *out) {
  *out = (lg_lin_lanes){0};
  for (int64_t k = 0; k < L->n; k++) {
    lg_uop *u = L->inst[k].u;
    if (L->inst[k].kind != LG_LIN_NODE || u->op != LG_OP_RANGE) continue;
    if (out->lane) return lanes_fail(ctx, who, u, "a kernel has one RANGE of vector lanes; this is a second one");
    int64_t n = u->src[0]->op == LG_OP_CONST ? u->src[0]->arg.i : 0;
    if (n < 2 || n > 64 || (n & (n - 1)))
      return lanes_fail(ctx, who, u, "vector lanes need a constant size, a power of 2 from 2 to 64");
    out->lane = u, out->width = (int32_t)n;
  }
  out->vec = calloc((size_t)nslots + 1, sizeof *out->vec);
  out->vacc = calloc((size_t)nslots + 1, sizeof *out->vacc);
  out->finish_at = calloc((size_t)nslots + 1, sizeof *out->finish_at);
  out->finishing = malloc(((size_t)nslots + 1) * sizeof *out->finishing);
  if (!out->vec || !out->vacc || !out->finish_at || !out->finishing)
    return lg_ctx_fail(ctx, LG_ERR_NOMEM, "%s: out of memory", who);
  if (!out->lane) return LG_OK;
  for (bool changed = true; changed;) {
    changed = false;
    for (int64_t k = 0; k < L->n; k++) {
      lg_uop *u = L->inst[k].u;
      if (!lg_lin_has_slot(L->inst[k].kind)) continue;
      int64_t i = slot(sctx, u);
      bool v = u == out->lane, acc = false;
      if (u->op == LG_OP_REDUCE) {
        bool over = false;
        const lg_uop *outer = NULL;
        for (int32_t j = 1; j < u->nsrc; j++) {
          over |= u->src[j] == out->lane;
          if (u->src[j] != out->lane && (!outer || u->src[j]->arg.ints[0] < outer->arg.ints[0])) outer = u->src[j];
        }
        acc = over || out->vec[slot(sctx, u->src[0])];
        v = acc && !over;
        if (over && outer && !out->finish_at[i]) out->finish_at[i] = outer, out->finishing[out->nfinishing++] = u;
      } else if (u->op != LG_OP_CONST && u->op != LG_OP_DEFINE_GLOBAL && u->op != LG_OP_DEFINE_VAR) {
        for (int32_t j = 0; j < u->nsrc; j++) v |= out->vec[slot(sctx, u->src[j])];
      }
      changed |= v != out->vec[i] || acc != out->vacc[i];
      out->vec[i] = v, out->vacc[i] = acc;
    }
  }
  for (int64_t k = 0; k < L->n; k++) {
    lg_uop *u = L->inst[k].u;
    int32_t dt = lg_dt_scalar_id(u->op == LG_OP_STORE ? u->src[1]->dtype : u->dtype);
    if (lg_lin_has_slot(L->inst[k].kind) && (out->vec[slot(sctx, u)] || out->vacc[slot(sctx, u)]) &&
        (dt == LG_DT_FLOAT16 || dt == LG_DT_BFLOAT16))
      return lanes_fail(ctx, who, u, "vector lanes of float16 and bfloat16 are not supported");
  }
  return LG_OK;
}

lg_lin_facts lg_lin_facts_of(const lg_uop *u) {
  lg_lin_facts f = {0};
  int64_t lo, hi;
  bool ranged = lg_dt_int_range(u->dtype, &lo, &hi);
  f.nowrap = ranged && u->has_bounds && (u->vmin > lo || u->vmax < hi);
  if (u->nsrc < 2) return f;
  const lg_uop *a = u->src[0], *b = u->src[1];
  int32_t size = (int32_t)lg_dtype_itemsize(u->dtype);
  f.nonneg = a->has_bounds && a->vmin >= 0;
  f.shift_plain = b->has_bounds && b->vmin >= 0 && b->vmax < 8 * size;
  /* a narrow signed IDIV happens in int (C) or is widened (LLVM): INT_MIN / -1 cannot trap */
  bool minus_one = b->vmin <= -1 && b->vmax >= -1, int_min = ranged && a->has_bounds && a->vmin == lo;
  f.div_plain = b->has_bounds && (b->vmin > 0 || b->vmax < 0) &&
                (lg_dtype_kind(u->dtype) == 'u' || size < 4 || !(minus_one && int_min));
  return f;
}

int32_t lg_lin_reduce_op(const lg_uop *u) {
  const char *s = u->arg.kind == LG_ARG_STR ? u->arg.s : "";
  return strcmp(s, "ADD") == 0 ? LG_OP_ADD : strcmp(s, "MUL") == 0 ? LG_OP_MUL : strcmp(s, "MAX") == 0 ? LG_OP_MAX : -1;
}

static const char *say(char *msg, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static const char *say(char *msg, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, size, fmt, ap);
  va_end(ap);
  return msg;
}

const char *lg_lin_check_node(const lg_uop *u, const char *who, char *msg, size_t size) {
  char a[48], b[48];
  lg_dtype dt = u->dtype;
  switch (u->op) {
  case LG_OP_DEFINE_GLOBAL: {
    lg_dtype base = lg_dtype_base(dt);
    if (!lg_dtype_is_ptr(dt) || lg_dtype_addrspace(dt) != LG_ADDR_GLOBAL || !lg_dt_is_plain(base) ||
        lg_dtype_kind(base) == 'v')
      return say(msg, size, "must be a global pointer to a scalar dtype");
    if (u->arg.kind != LG_ARG_INT || u->arg.i < 0) return say(msg, size, "the arg must be a buffer slot >= 0");
    return NULL;
  }
  case LG_OP_INDEX:
    if (u->src[0]->op != LG_OP_DEFINE_GLOBAL)
      return say(msg, size, "indexes %s; %s knows DEFINE_GLOBAL buffers only", lg_op_name(u->src[0]->op), who);
    if (u->nsrc > 3) return say(msg, size, "takes a buffer, an index and a gate, got %d sources", u->nsrc);
    if (!lg_dt_is_plain(u->src[1]->dtype) || !lg_dt_is_int(u->src[1]->dtype))
      return say(msg, size, "the index is %s, not an integer", (lg_dtype_name(u->src[1]->dtype, a, sizeof a), a));
    if (u->nsrc == 3 && u->src[2]->dtype != LG_DT_BOOL)
      return say(msg, size, "the gate is %s, not bool", (lg_dtype_name(u->src[2]->dtype, a, sizeof a), a));
    return NULL;
  case LG_OP_LOAD:
  case LG_OP_STORE: {
    if (u->src[0]->op != LG_OP_INDEX) return say(msg, size, "the address is %s, not an INDEX", lg_op_name(u->src[0]->op));
    if (u->nsrc > 2) return say(msg, size, "takes an INDEX and a value, got %d sources", u->nsrc);
    lg_dtype elem = lg_dtype_base(u->src[0]->src[0]->dtype), v = u->op == LG_OP_LOAD ? dt : u->src[1]->dtype;
    lg_dtype_name(v, a, sizeof a), lg_dtype_name(elem, b, sizeof b);
    if (v != elem)
      return say(msg, size, "%s %s %s a buffer of %s", u->op == LG_OP_LOAD ? "loads" : "stores", a,
                  u->op == LG_OP_LOAD ? "from" : "into", b);
    if (u->op == LG_OP_LOAD && u->nsrc == 2 && u->src[1]->dtype != dt)
      return say(msg, size, "its alternative value is %s, not %s", (lg_dtype_name(u->src[1]->dtype, b, sizeof b), b), a);
    return NULL;
  }
  case LG_OP_REDUCE: {
    int32_t op = lg_lin_reduce_op(u);
    char k = lg_dtype_kind(dt);
    if (op < 0) return say(msg, size, "the arg must be \"ADD\", \"MUL\" or \"MAX\"");
    if (u->src[0]->dtype != dt)
      return say(msg, size, "reduces a %s value", (lg_dtype_name(u->src[0]->dtype, a, sizeof a), a));
    if (k != 'v' && !lg_op_has(op, k == 'f' ? LG_OPF_FLOATOK : k == 'b' ? LG_OPF_BOOLOK : LG_OPF_INTOK))
      return say(msg, size, "%s is not defined on %s", lg_op_name(op), (lg_dtype_name(dt, a, sizeof a), a));
    break;
  }
  case LG_OP_SINK:
  case LG_OP_GROUP:
  case LG_OP_END: return NULL;
  default: break;
  }
  if (!lg_dt_is_plain(dt) || lg_dtype_kind(dt) == 'v')
    return say(msg, size, "%s needs a scalar dtype here (no vectors or pointers yet)", who);
  return NULL;
}
