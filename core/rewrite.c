/* rewrite.c: graph_rewrite, named passes and rule statistics.
 *
 * The walk is iterative (an explicit stack of frames: graph depth costs heap, not C stack) and
 * memoized: each node is rewritten once per call. Modes:
 *   bottom-up (default): a node's sources first. A node whose sources changed is rebuilt (same
 *     op, dtype and arg) and processed as a new node; otherwise the rules are tried on it, and a
 *     replacement is itself processed completely, so every result is a fixed point.
 *   top-down: the rules are tried on a node repeatedly until none applies, then its sources are
 *     processed; a node rebuilt from changed sources is processed again from the top.
 * Termination: a frame's depth counts the rewrites in the chain that produced its node. A
 * replacement is one deeper than the node it replaces, unless it is one of that node's sources
 * (x + 0 -> x: such steps only shrink the graph, so a chain of them ends); a source inherits its
 * user's depth only while it is itself in progress (a replacement that contains the node it
 * replaces), so ordinary sources start again at 0. A chain longer than the budget is an error
 * that names the rules in it.
 * References: the root is held for the call, so the nodes of the input graph ("original" nodes,
 * reached from the root through sources) stay alive without references of their own; every
 * other node a frame or the memo keeps is held with a reference, the memo's until the call
 * ends. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pattern.h"

enum { ENTER, SOURCES, RESULT };
enum { DEFAULT_BUDGET = 1000, KEEP_MAX = 1 << 19 /* entries kept for the next walk */ };

typedef struct frame {
  lg_uop *n, *cur; /* cur: the node that stands for n at this stage */
  int32_t stage, depth;
  bool from_src;   /* pushed as a source (its depth is its user's) */
  bool orig;       /* n is an original node (not held by the frame) */
} frame;

/* The memo lives in the nodes: u->walk is the id of the walk that saw u last and u->walk_res
 * its result there (NULL while in progress). A walk nested in another (a callback that calls
 * graph_rewrite) saves the marks of the outer walk that it overwrites and puts them back when it
 * ends, so the outer walk's memo and its in-progress marks survive. */
typedef struct saved_mark {
  lg_uop *u;
  uint64_t walk;
  lg_uop *res;
} saved_mark;

/* A walk's buffers; the rule set keeps the last one for its next walk, since allocating and
 * faulting in fresh pages every call costs more than the walk itself (up to KEEP_MAX entries
 * each: a huge walk's buffers are not worth holding on to). */
struct lg_walkbuf {
  frame *stack;
  int32_t cap;
  lg_uop **held; /* the references this walk took (memo keys and results) */
  int32_t capheld;
  lg_uop **srcs;
  int32_t capsrcs;
  int32_t *chain; /* chain[d]: the rule of the d-th rewrite of the chain being processed */
  int32_t capchain;
  saved_mark *saved; /* a nested walk's overwritten marks */
  int32_t capsaved;
};

typedef struct walk {
  lg_ctx *ctx;
  lg_ruleset *rs;
  int32_t mode, budget;
  lg_matcher m;
  lg_walkbuf *b;
  uint64_t id, mcount;
  bool nested;
  int32_t sp, nheld, nsaved;
  int64_t visits, rewrites;
} walk;

void lg_walkbuf_free(lg_walkbuf *b) {
  if (!b) return;
  free(b->stack);
  free(b->held);
  free(b->srcs);
  free(b->chain);
  free(b->saved);
  free(b);
}

static lg_status oom(walk *w) {
  return lg_ctx_fail(w->ctx, LG_ERR_NOMEM, "graph_rewrite(%s): out of memory", w->rs->name);
}

/* Mark n as seen by this walk; *fresh when it was not yet. false when out of memory. */
static bool mark(walk *w, lg_uop *n, bool *fresh) {
  *fresh = n->walk != w->id;
  if (!*fresh) return true;
  if (w->nested && n->walk) {
    if (!lg_reserve(&w->b->saved, &w->b->capsaved, (int64_t)w->nsaved + 1, sizeof *w->b->saved)) return false;
    w->b->saved[w->nsaved++] = (saved_mark){n, n->walk, n->walk_res};
  }
  n->walk = w->id;
  n->walk_res = NULL;
  w->mcount++;
  return true;
}

/* n's finished result, or NULL (not seen, or in progress) */
static lg_uop *done(const walk *w, const lg_uop *n) { return n->walk == w->id ? n->walk_res : NULL; }

/* Take a reference to u until the walk ends. */
static lg_status hold(walk *w, lg_uop *u) {
  if (!lg_reserve(&w->b->held, &w->b->capheld, (int64_t)w->nheld + 1, sizeof *w->b->held)) return oom(w);
  w->b->held[w->nheld++] = lg_uop_retain(u);
  return LG_OK;
}

/* Record r as the result of n (an original node when orig). */
static lg_status set_result(walk *w, lg_uop *n, bool orig, lg_uop *r) {
  bool fresh;
  lg_status st = mark(w, n, &fresh) ? LG_OK : oom(w);
  if (!st && fresh && !orig) st = hold(w, n);
  if (!st && r != n) st = hold(w, r);
  if (!st) n->walk_res = r;
  return st;
}

static lg_status push(walk *w, lg_uop *n, lg_uop *cur, int32_t stage, int32_t depth, bool from_src, bool orig) {
  if (!lg_reserve(&w->b->stack, &w->b->cap, (int64_t)w->sp + 1, sizeof *w->b->stack)) return oom(w);
  w->b->stack[w->sp++] = (frame){n, cur, stage, depth, from_src, orig};
  if (!orig) lg_uop_retain(n);
  if (cur != n) lg_uop_retain(cur);
  return LG_OK;
}

static void drop(frame *f) {
  if (!f->orig) lg_uop_release(f->n);
  if (f->cur != f->n) lg_uop_release(f->cur);
}

static lg_status no_fixed_point(walk *w, const lg_uop *u) {
  int32_t *count = calloc((size_t)w->rs->nrules, sizeof *count);
  if (!count) return oom(w);
  for (int32_t i = 0; i < w->budget; i++) count[w->b->chain[i]]++;
  char list[512] = "";
  size_t len = 0;
  for (int32_t k = 0; k < 4 && len < sizeof list; k++) {
    int32_t best = -1;
    for (int32_t r = 0; r < w->rs->nrules; r++)
      if (count[r] && (best < 0 || count[r] > count[best])) best = r;
    if (best < 0) break;
    len += (size_t)snprintf(list + len, sizeof list - len, "%s%s (%dx)", k ? ", " : "", w->rs->rules[best].name,
                            count[best]);
    count[best] = 0;
  }
  free(count);
  char dt[64];
  lg_dtype_name(u->dtype, dt, sizeof dt);
  return lg_ctx_fail(w->ctx, LG_ERR_LIMIT, "graph_rewrite(%s): no fixed point after %d rewrites of one node (%s %s); last rules: %s",
                     w->rs->name, w->budget, lg_op_name(u->op), dt, list);
}

/* u was rewritten by rule into r at chain depth *depth: count it, and deepen the chain */
static lg_status rewritten(walk *w, const lg_uop *u, int32_t rule, const lg_uop *r, int32_t *depth) {
  w->rewrites++;
  for (int32_t i = 0; i < u->nsrc; i++)
    if (u->src[i] == r) return LG_OK;
  if (*depth >= w->budget) return no_fixed_point(w, u);
  w->b->chain[(*depth)++] = rule;
  return LG_OK;
}

/* n's result is r's: take it when r is finished, else process r first. Consumes r. */
static lg_status follow(walk *w, lg_uop *n, bool orig, lg_uop *r, int32_t depth) {
  lg_uop *d = done(w, r);
  lg_status st = d ? set_result(w, n, orig, d) : push(w, n, r, RESULT, 0, false, orig);
  if (!st && !d) st = push(w, r, r, ENTER, depth, false, false);
  lg_uop_release(r);
  return st;
}

/* cur stands for n and its sources are finished, with results in w->b->srcs: rebuild cur when
 * they changed, else (bottom-up) try the rules on it, else it is n's result. */
static lg_status sources(walk *w, lg_uop *n, bool orig, lg_uop *cur, int32_t depth) {
  lg_uop *r;
  lg_status st;
  bool changed = false;
  for (int32_t i = 0; i < cur->nsrc; i++) changed |= w->b->srcs[i] != cur->src[i];
  if (changed) {
    if ((st = lg_uop_new(w->ctx, cur->op, cur->dtype, w->b->srcs, cur->nsrc, &cur->arg, &r))) return st;
    return follow(w, n, orig, r, depth);
  }
  if (w->mode == LG_REWRITE_BOTTOM_UP) {
    int32_t rule;
    w->visits++;
    if ((st = lg_matcher_apply(&w->m, cur, &r, &rule))) return st;
    if (r) {
      if ((st = rewritten(w, cur, rule, r, &depth))) {
        lg_uop_release(r);
        return st;
      }
      return follow(w, n, orig, r, depth);
    }
  }
  st = set_result(w, n, orig, cur);
  if (!st && cur != n) st = set_result(w, cur, false, cur);
  return st;
}

/* Fill w->b->srcs with the results of u's sources; false when one is not finished. */
static lg_status gather(walk *w, const lg_uop *u, bool *all) {
  if (!lg_reserve(&w->b->srcs, &w->b->capsrcs, u->nsrc, sizeof *w->b->srcs)) return oom(w);
  *all = true;
  for (int32_t i = 0; i < u->nsrc; i++) *all &= (w->b->srcs[i] = done(w, u->src[i])) != NULL;
  return LG_OK;
}

static lg_status enter(walk *w, const frame *f) {
  lg_uop *n = f->n;
  bool fresh;
  if (!mark(w, n, &fresh)) return oom(w);
  if (n->walk_res) return LG_OK; /* finished */
  int32_t depth = (!fresh || !f->from_src) ? f->depth : 0;
  lg_status st = fresh && !f->orig ? hold(w, n) : LG_OK;
  if (st) return st;
  lg_uop *cur = lg_uop_retain(n);
  while (w->mode == LG_REWRITE_TOP_DOWN) {
    lg_uop *r, *d;
    int32_t rule;
    w->visits++;
    if ((st = lg_matcher_apply(&w->m, cur, &r, &rule)) || !r) break;
    if ((st = rewritten(w, cur, rule, r, &depth))) {
      lg_uop_release(r);
      break;
    }
    lg_uop_release(cur);
    cur = r;
    if ((d = done(w, cur))) {
      st = set_result(w, n, f->orig, d);
      lg_uop_release(cur);
      return st;
    }
  }
  bool all = false, orig = f->orig && cur == n; /* then cur's sources are original too */
  if (!st) st = gather(w, cur, &all);
  if (!st && all) {
    st = sources(w, n, f->orig, cur, depth);
  } else if (!st) {
    st = push(w, n, cur, SOURCES, depth, false, f->orig);
    for (int32_t i = cur->nsrc - 1; i >= 0 && !st; i--)
      if (!done(w, cur->src[i])) st = push(w, cur->src[i], cur->src[i], ENTER, depth, true, orig);
  }
  lg_uop_release(cur);
  return st;
}

lg_status lg_graph_rewrite(lg_ctx *ctx, lg_uop *root, lg_ruleset *rs, lg_rewrite_opts *opts, lg_uop **out) {
  lg_rewrite_opts o = opts ? *opts : (lg_rewrite_opts){0};
  *out = NULL;
  if (!root || !rs) return lg_ctx_fail(ctx, LG_ERR_ARG, "graph_rewrite: no %s", root ? "rule set" : "graph");
  if (o.mode != LG_REWRITE_BOTTOM_UP && o.mode != LG_REWRITE_TOP_DOWN)
    return lg_ctx_fail(ctx, LG_ERR_ARG, "graph_rewrite(%s): unknown mode %d", rs->name, o.mode);
  if (o.budget < 0) return lg_ctx_fail(ctx, LG_ERR_ARG, "graph_rewrite(%s): budget %d < 0", rs->name, o.budget);
  walk w = {.ctx = ctx, .rs = rs, .mode = o.mode, .budget = o.budget ? o.budget : DEFAULT_BUDGET, .b = rs->spare,
            .id = ++ctx->walks, .nested = ctx->active_walks > 0};
  lg_status st = lg_ruleset_index(rs);
  if (st) return st;
  rs->spare = NULL;
  if (!w.b) w.b = calloc(1, sizeof *w.b);
  if (!w.b || !lg_reserve(&w.b->chain, &w.b->capchain, w.budget, sizeof *w.b->chain) ||
      (st = lg_matcher_init(&w.m, rs, o.rctx, o.stats))) {
    lg_walkbuf_free(w.b);
    return st ? st : oom(&w);
  }
  lg_ruleset_retain(rs);
  lg_uop_retain(root);
  rs->busy++;
  ctx->active_walks++;

  st = push(&w, root, root, ENTER, 0, true, true);
  while (!st && w.sp) {
    frame f = w.b->stack[--w.sp];
    bool all;
    if (f.stage == ENTER) {
      st = enter(&w, &f);
    } else if (f.stage == RESULT) {
      lg_uop *d = done(&w, f.cur);
      assert(d); /* f.cur was pushed after this frame */
      st = set_result(&w, f.n, f.orig, d);
    } else if (!(st = gather(&w, f.cur, &all))) {
      assert(all); /* the sources were pushed after this frame */
      st = sources(&w, f.n, f.orig, f.cur, f.depth);
    }
    drop(&f);
  }
  if (!st) *out = lg_uop_retain(done(&w, root));

  while (w.sp) drop(&w.b->stack[--w.sp]);
  while (w.nsaved) { /* before the references go: a saved node may be held by this walk only */
    saved_mark *m = &w.b->saved[--w.nsaved];
    m->u->walk = m->walk, m->u->walk_res = m->res;
  }
  while (w.nheld) lg_uop_release(w.b->held[--w.nheld]);
  lg_matcher_free(&w.m);
  rs->busy--;
  ctx->active_walks--;
  if (w.b->capsaved > KEEP_MAX) free(w.b->saved), w.b->saved = NULL, w.b->capsaved = 0;
  if (w.b->cap > KEEP_MAX) free(w.b->stack), w.b->stack = NULL, w.b->cap = 0;
  if (w.b->capheld > KEEP_MAX) free(w.b->held), w.b->held = NULL, w.b->capheld = 0;
  if (rs->spare) lg_walkbuf_free(w.b); /* a nested walk left its buffers first */
  else rs->spare = w.b;
  lg_ruleset_release(rs);
  lg_uop_release(root);
  if (opts) opts->visits = w.visits, opts->rewrites = w.rewrites, opts->nodes = (int64_t)w.mcount;
  return st;
}

lg_status lg_pass(lg_ctx *ctx, const char *name, lg_ruleset **out) {
  const lg_rule_host *host = lg_ctx_host(ctx);
  *out = NULL;
  if (!host || !host->load_pass)
    return lg_ctx_fail(ctx, LG_ERR_HOST, "pass %s: no rule host to load rule files (use lg_open)", name);
  return host->load_pass(host->ud, ctx, name, out);
}

int32_t lg_ruleset_stats(const lg_ruleset *rs, int32_t i, lg_rule_stats *out) {
  if (i < 0 || i >= rs->nrules) return 0;
  const lg_rule *r = &rs->rules[i];
  *out = (lg_rule_stats){r->name, r->tries, r->matches, r->rewrites, r->ns};
  return 1;
}

void lg_ruleset_reset_stats(lg_ruleset *rs) {
  for (int32_t i = 0; i < rs->nrules; i++) {
    lg_rule *r = &rs->rules[i];
    r->tries = r->matches = r->rewrites = r->ns = 0;
  }
}
