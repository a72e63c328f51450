/* pattern.c: rule sets as flat arrays, the matcher, and templates.
 *
 * The matcher is a small backtracking machine, not a recursive function: a goal list ("match
 * node p against UOp u", "match p against each source of u from i on"), a list of predicates
 * deferred until the whole structure matched ("run p's predicate on u"), both kept as cons
 * cells in an arena, a capture trail, and choice points for the alternatives of LG_PAT_ANY and
 * the swapped order of commutative sources. A full match hands the captures to
 * the rule; when the rule gives no result the machine resumes from the latest choice point, so
 * every match is tried in a fixed order: alternatives in order, sources in order, a
 * commutative pair as written before swapped. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pattern.h"

enum { G_NIL = -1, G_NODE = -1, G_PRED = -2 }; /* gcell.idx >= 0: "each source from idx on" */

struct lg_gcell {
  lg_uop *u;
  int32_t p, idx, next;
};

struct lg_choice {
  lg_uop *u;
  int32_t p, alt, goals, preds, cells, trail;
};

bool lg_reserve(void *pp, int32_t *cap, int64_t need, size_t size) {
  if (need <= *cap) return true;
  int64_t c = *cap ? *cap : 16;
  while (c < need) c *= 2;
  if (c > INT32_MAX) return false;
  void *p;
  memcpy(&p, pp, sizeof p);
  p = realloc(p, (size_t)c * size);
  if (!p) return false;
  memcpy(pp, &p, sizeof p);
  *cap = (int32_t)c;
  return true;
}

static char *dupstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  return d ? memcpy(d, s, n) : NULL;
}

/* ---- native results ----------------------------------------------------------------------- */

static lg_status native_fold(lg_ctx *ctx, lg_uop *u, lg_uop **out) { return lg_uop_fold(ctx, u, out); }

static lg_status native_bounds(lg_ctx *ctx, lg_uop *u, lg_uop **out) {
  *out = NULL;
  if (u->op == LG_OP_CONST || !u->has_bounds || u->vmin != u->vmax || !lg_dt_is_plain(u->dtype)) return LG_OK;
  return lg_uop_const_int(ctx, u->dtype, u->vmin, out);
}

static const struct {
  const char *name;
  lg_status (*fn)(lg_ctx *ctx, lg_uop *u, lg_uop **out);
} natives[] = {{"fold", native_fold}, {"bounds", native_bounds}, {"divmod", lg_sym_divmod}};
#define NNATIVES (sizeof natives / sizeof natives[0])

int32_t lg_native_lookup(const char *name) {
  for (size_t i = 0; i < NNATIVES; i++)
    if (strcmp(natives[i].name, name) == 0) return (int32_t)i + 1;
  return 0;
}

/* ---- rule sets ---------------------------------------------------------------------------- */

lg_status lg_ruleset_new(lg_ctx *ctx, const char *name, void *fns, lg_ruleset **out) {
  *out = NULL;
  lg_ruleset *rs = calloc(1, sizeof *rs);
  char *nm = dupstr(name ? name : "rules");
  if (!rs || !nm) {
    free(rs);
    free(nm);
    return lg_ctx_fail(ctx, LG_ERR_NOMEM, "rule set: out of memory");
  }
  rs->ctx = ctx;
  rs->refcnt = 1;
  rs->name = nm;
  rs->fns = fns;
  *out = rs;
  return LG_OK;
}

lg_ruleset *lg_ruleset_retain(lg_ruleset *rs) {
  if (rs) rs->refcnt++;
  return rs;
}

static void free_arg(lg_arg *a) {
  free((void *)a->s);
  free((void *)a->ints);
}

void lg_ruleset_release(lg_ruleset *rs) {
  if (!rs || --rs->refcnt) return;
  const lg_rule_host *host = lg_ctx_host(rs->ctx);
  if (rs->fns && host && host->release_fns) host->release_fns(host->ud, rs->fns);
  for (int32_t i = 0; i < rs->nrules; i++) {
    for (int32_t j = 0; j < rs->rules[i].ncap; j++) free(rs->rules[i].capnames[j]);
    free(rs->rules[i].capnames);
    free(rs->rules[i].name);
  }
  for (int32_t i = 0; i < rs->nargs; i++) free_arg(&rs->args[i]);
  free(rs->rules);
  free(rs->args);
  free(rs->dts);
  free(rs->kids);
  free(rs->nodes);
  free(rs->byop);
  free(rs->name);
  lg_walkbuf_free(rs->spare);
  free(rs);
}

const char *lg_ruleset_name(const lg_ruleset *rs) { return rs->name; }
int32_t lg_ruleset_count(const lg_ruleset *rs) { return rs->nrules; }

/* ---- checking a rule ---------------------------------------------------------------------- */

typedef struct {
  lg_ctx *ctx;
  const char *rule;
  const char *names[LG_MAX_CAPS];
  int32_t ncap;
} checker;

__attribute__((format(printf, 2, 3))) static lg_status bad(checker *c, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return lg_ctx_fail(c->ctx, LG_ERR_ARG, "rule %s: %s", c->rule, msg);
}

static int32_t slot_of(const checker *c, const char *name) {
  for (int32_t i = 0; i < c->ncap; i++)
    if (strcmp(c->names[i], name) == 0) return i;
  return -1;
}

static bool arg_ok_kind(const lg_arg *a) {
  if (a->kind < LG_ARG_NONE || a->kind > LG_ARG_STR_INTS || a->n < 0) return false;
  if ((a->kind == LG_ARG_STR || a->kind == LG_ARG_STR_INTS) && !a->s) return false;
  return !((a->kind == LG_ARG_INTS || a->kind == LG_ARG_STR_INTS) && a->n > 0 && !a->ints);
}

/* Can some op of the set take n sources (exactly, or at least n for a prefix)? */
static bool arity_possible(const lg_pat *p, int32_t n, bool prefix) {
  if (p->nops == 0) return true;
  for (int32_t i = 0; i < p->nops; i++) {
    int32_t lo = lg_ops[p->ops[i]].min_src, hi = lg_ops[p->ops[i]].max_src;
    if ((hi < 0 || n <= hi) && (prefix || n >= lo)) return true;
  }
  return false;
}

/* The shape shared by pattern and template nodes: kinds, ranges, source indices. */
static lg_status check_shape(checker *c, const lg_pat *ps, int32_t n, int32_t i, const char *what) {
  const lg_pat *p = &ps[i];
  if (p->kind != LG_PAT_OP && p->kind != LG_PAT_ANY) return bad(c, "%s node %d: unknown kind %d", what, i, p->kind);
  if (p->nops < 0 || (p->nops && !p->ops)) return bad(c, "%s node %d: malformed op set", what, i);
  for (int32_t j = 0; j < p->nops; j++)
    if (p->ops[j] < 0 || p->ops[j] >= LG_OP__COUNT) return bad(c, "%s node %d: unknown op %d", what, i, p->ops[j]);
  if (p->ndtypes < 0 || (p->ndtypes && !p->dtypes) || (p->dtype_classes & ~15u))
    return bad(c, "%s node %d: malformed dtype filter", what, i);
  for (int32_t j = 0; j < p->ndtypes; j++)
    if (!lg_dtype_is_valid(p->dtypes[j])) return bad(c, "%s node %d: invalid dtype 0x%x", what, i, (unsigned)p->dtypes[j]);
  if (p->src_mode < LG_SRC_ANY || p->src_mode > LG_SRC_EACH || p->nsrc < 0 || (p->nsrc && !p->src))
    return bad(c, "%s node %d: malformed sources", what, i);
  for (int32_t j = 0; j < p->nsrc; j++)
    if (p->src[j] <= i || p->src[j] >= n)
      return bad(c, "%s node %d: source %d must be a later node of the same array", what, i, j);
  if (p->has_arg && !arg_ok_kind(&p->arg)) return bad(c, "%s node %d: malformed arg", what, i);
  return LG_OK;
}

static lg_status check_pat(checker *c, const lg_pat *ps, int32_t n, int32_t i) {
  const lg_pat *p = &ps[i];
  lg_status st = check_shape(c, ps, n, i, "pattern");
  if (st) return st;
  if (p->kind == LG_PAT_ANY && p->nsrc < 1) return bad(c, "pattern node %d: an alternation needs alternatives", i);
  if (p->kind == LG_PAT_OP) {
    if (p->src_mode == LG_SRC_ANY && p->nsrc) return bad(c, "pattern node %d: sources given but not checked", i);
    if (p->src_mode == LG_SRC_EACH && p->nsrc != 1) return bad(c, "pattern node %d: 'each' takes one pattern", i);
    if (p->commutative && (p->src_mode != LG_SRC_EXACT || p->nsrc != 2))
      return bad(c, "pattern node %d: a commutative pattern needs exactly 2 sources", i);
    if ((p->src_mode == LG_SRC_EXACT || p->src_mode == LG_SRC_PREFIX) &&
        !arity_possible(p, p->nsrc, p->src_mode == LG_SRC_PREFIX))
      return bad(c, "%s never has %s%d sources", p->nops == 1 ? lg_ops[p->ops[0]].name : "no op of the set",
                 p->src_mode == LG_SRC_PREFIX ? "at least " : "", p->nsrc);
  }
  if (p->pred < -1) return bad(c, "pattern node %d: bad predicate index %d", i, p->pred);
  if (p->name && slot_of(c, p->name) < 0) {
    if (c->ncap == LG_MAX_CAPS) return bad(c, "more than %d capture names", LG_MAX_CAPS);
    c->names[c->ncap++] = p->name;
  }
  return LG_OK;
}

/* The template kind of node i (or an error). */
static lg_status check_tmpl(checker *c, const lg_pat *ts, int32_t n, int32_t i, int32_t *kind) {
  const lg_pat *t = &ts[i];
  lg_status st = check_shape(c, ts, n, i, "template");
  if (st) return st;
  if (t->name) {
    if (slot_of(c, t->name) < 0)
      return bad(c, "capture '%s' is used in the template but never bound by the pattern", t->name);
    *kind = LG_T_REF;
    return LG_OK;
  }
  if (t->kind == LG_PAT_ANY) return bad(c, "a template cannot have alternatives");
  if (t->nops != 1)
    return bad(c, "%s", t->nops ? "a template node with an op set cannot be built"
                                : "a template node needs a capture name, a constant or an op");
  if (t->pred >= 0) return bad(c, "a template node cannot have a predicate");
  if (t->ndtypes > 1 || t->dtype_classes) return bad(c, "a template node takes one dtype, not a set");
  if (t->ops[0] == LG_OP_CONST && t->has_arg) {
    if ((t->arg.kind != LG_ARG_INT && t->arg.kind != LG_ARG_FLOAT) || t->nsrc)
      return bad(c, "a template constant needs a number or boolean value");
    *kind = LG_T_CONST;
    return LG_OK;
  }
  const char *op = lg_ops[t->ops[0]].name;
  if (t->src_mode != LG_SRC_EXACT && !(t->src_mode == LG_SRC_ANY && t->nsrc == 0))
    return bad(c, "template %s: sources must be an exact list", op);
  if (!arity_possible(t, t->nsrc, false)) return bad(c, "template %s: cannot be built with %d sources", op, t->nsrc);
  *kind = LG_T_OP;
  return LG_OK;
}

/* ---- adding a rule ------------------------------------------------------------------------ */

static bool copy_arg(lg_arg *dst, const lg_arg *src) {
  *dst = *src;
  dst->s = NULL;
  dst->ints = NULL;
  if (src->kind == LG_ARG_STR || src->kind == LG_ARG_STR_INTS) {
    if (!(dst->s = dupstr(src->s))) return false;
  }
  if ((src->kind == LG_ARG_INTS || src->kind == LG_ARG_STR_INTS) && src->n > 0) {
    int64_t *v = malloc((size_t)src->n * sizeof *v);
    if (!v) {
      free((void *)dst->s);
      return false;
    }
    dst->ints = memcpy(v, src->ints, (size_t)src->n * sizeof *v);
  }
  return true;
}

/* Append nodes ps[0..n) at rs->nnodes (space reserved); kinds[i] >= 0 overrides the kind. */
static bool append_nodes(lg_ruleset *rs, checker *c, const lg_pat *ps, int32_t n, const int32_t *kinds) {
  int32_t base = rs->nnodes;
  for (int32_t i = 0; i < n; i++) {
    const lg_pat *p = &ps[i];
    lg_pnode *pn = &rs->nodes[base + i];
    *pn = (lg_pnode){.kind = kinds ? kinds[i] : p->kind, .src_mode = p->src_mode, .nsrc = p->nsrc, .kid = rs->nkids,
                     .dt = rs->ndts, .ndt = p->ndtypes, .dtc = p->dtype_classes, .arg = -1,
                     .cap = p->name ? slot_of(c, p->name) : -1, .pred = p->pred, .op = p->nops ? p->ops[0] : -1,
                     .comm = p->commutative != 0};
    if (p->nops == 0) pn->ops[0] = pn->ops[1] = ~0ull;
    for (int32_t j = 0; j < p->nops; j++) pn->ops[p->ops[j] >> 6] |= 1ull << (p->ops[j] & 63);
    for (int32_t j = 0; j < p->nsrc; j++) rs->kids[rs->nkids++] = base + p->src[j];
    for (int32_t j = 0; j < p->ndtypes; j++) rs->dts[rs->ndts++] = p->dtypes[j];
    if (p->has_arg) {
      if (!copy_arg(&rs->args[rs->nargs], &p->arg)) return false;
      pn->arg = rs->nargs++;
    }
  }
  /* an alternation's root ops are its alternatives' (sources come later: walk back to front) */
  for (int32_t i = n - 1; i >= 0; i--) {
    lg_pnode *pn = &rs->nodes[base + i];
    if (pn->kind != LG_PAT_ANY) continue;
    for (int32_t j = 0; j < pn->nsrc; j++) {
      pn->ops[0] |= rs->nodes[rs->kids[pn->kid + j]].ops[0];
      pn->ops[1] |= rs->nodes[rs->kids[pn->kid + j]].ops[1];
    }
  }
  rs->nnodes += n;
  return true;
}

static void count(const lg_pat *ps, int32_t n, int64_t *kids, int64_t *dts, int64_t *args, int32_t *maxsrc) {
  for (int32_t i = 0; i < n; i++) {
    *kids += ps[i].nsrc;
    *dts += ps[i].ndtypes;
    *args += ps[i].has_arg != 0;
    if (ps[i].nsrc > *maxsrc) *maxsrc = ps[i].nsrc;
  }
}

lg_status lg_ruleset_add(lg_ruleset *rs, const lg_rule_def *def) {
  char fallback[64];
  snprintf(fallback, sizeof fallback, "%s#%d", rs->name, rs->nrules + 1);
  checker c = {.ctx = rs->ctx, .rule = def->name ? def->name : fallback};
  if (rs->busy) return bad(&c, "the rule set is in use by a rewrite");
  if (!def->pat || def->npat < 1) return bad(&c, "the pattern is empty");
  if (def->fn < -1 || def->ntmpl < 0 || (def->ntmpl && !def->tmpl) || def->native < 0 ||
      def->native > (int32_t)NNATIVES || (def->fn >= 0) + (def->ntmpl > 0) + (def->native > 0) != 1)
    return bad(&c, "needs one result: a callback, a template or a native result");
  lg_status st;
  for (int32_t i = 0; i < def->npat; i++)
    if ((st = check_pat(&c, def->pat, def->npat, i))) return st;
  int32_t *kinds = NULL;
  if (def->ntmpl && !(kinds = malloc((size_t)def->ntmpl * sizeof *kinds)))
    return lg_ctx_fail(rs->ctx, LG_ERR_NOMEM, "rule %s: out of memory", c.rule);
  for (int32_t i = 0; i < def->ntmpl; i++)
    if ((st = check_tmpl(&c, def->tmpl, def->ntmpl, i, &kinds[i]))) {
      free(kinds);
      return st;
    }

  int64_t nk = 0, nd = 0, na = 0;
  int32_t maxsrc = 0, ignore = 0;
  count(def->pat, def->npat, &nk, &nd, &na, &ignore);
  count(def->tmpl, def->ntmpl, &nk, &nd, &na, &maxsrc);
  lg_rule ru = {.pat = rs->nnodes, .tmpl = rs->nnodes + def->npat, .ntmpl = def->ntmpl, .fn = def->fn,
                .native = def->native, .ncap = c.ncap};
  bool ok = lg_reserve(&rs->nodes, &rs->capnodes, (int64_t)rs->nnodes + def->npat + def->ntmpl, sizeof *rs->nodes) &&
            lg_reserve(&rs->kids, &rs->capkids, rs->nkids + nk, sizeof *rs->kids) &&
            lg_reserve(&rs->dts, &rs->capdts, rs->ndts + nd, sizeof *rs->dts) &&
            lg_reserve(&rs->args, &rs->capargs, rs->nargs + na, sizeof *rs->args) &&
            lg_reserve(&rs->rules, &rs->caprules, (int64_t)rs->nrules + 1, sizeof *rs->rules) &&
            (ru.name = dupstr(c.rule)) && (ru.capnames = calloc(c.ncap ? (size_t)c.ncap : 1, sizeof *ru.capnames));
  for (int32_t i = 0; ok && i < c.ncap; i++) ok = (ru.capnames[i] = dupstr(c.names[i])) != NULL;
  int32_t nnodes = rs->nnodes, nkids = rs->nkids, ndts = rs->ndts, nargs = rs->nargs;
  ok = ok && append_nodes(rs, &c, def->pat, def->npat, NULL) && append_nodes(rs, &c, def->tmpl, def->ntmpl, kinds);
  free(kinds);
  if (!ok) { /* roll back to the set as it was */
    for (int32_t i = nargs; i < rs->nargs; i++) free_arg(&rs->args[i]);
    rs->nnodes = nnodes, rs->nkids = nkids, rs->ndts = ndts, rs->nargs = nargs;
    for (int32_t i = 0; ru.capnames && i < c.ncap; i++) free(ru.capnames[i]);
    free(ru.capnames);
    free(ru.name);
    return lg_ctx_fail(rs->ctx, LG_ERR_NOMEM, "rule %s: out of memory", c.rule);
  }
  ru.ops[0] = rs->nodes[ru.pat].ops[0];
  ru.ops[1] = rs->nodes[ru.pat].ops[1];
  const lg_pnode *root = &rs->nodes[ru.pat];
  if (root->kind == LG_PAT_OP && root->src_mode == LG_SRC_EACH) {
    ru.qeach = true;
    ru.qops[0][0] = rs->nodes[rs->kids[root->kid]].ops[0];
    ru.qops[0][1] = rs->nodes[rs->kids[root->kid]].ops[1];
  } else if (root->kind == LG_PAT_OP && root->src_mode == LG_SRC_EXACT && (root->nsrc == 1 || root->nsrc == 2)) {
    ru.qn = root->nsrc;
    ru.qcomm = root->comm;
    for (int32_t i = 0; i < root->nsrc; i++) {
      const lg_pnode *kid = &rs->nodes[rs->kids[root->kid + i]]; /* an alternation has its alternatives' ops */
      ru.qops[i][0] = kid->ops[0];
      ru.qops[i][1] = kid->ops[1];
    }
  }
  if (def->ntmpl > rs->max_tmpl) rs->max_tmpl = def->ntmpl;
  if (maxsrc > rs->max_tmpl) rs->max_tmpl = maxsrc; /* the scratch also holds one node's sources */
  rs->rules[rs->nrules++] = ru;
  rs->indexed = false;
  return LG_OK;
}

lg_status lg_ruleset_index(lg_ruleset *rs) {
  if (rs->indexed) return LG_OK;
  int32_t total = 0;
  for (int32_t op = 0; op < LG_OP__COUNT; op++) {
    rs->byop_start[op] = total;
    for (int32_t r = 0; r < rs->nrules; r++) total += (int32_t)((rs->rules[r].ops[op >> 6] >> (op & 63)) & 1);
  }
  rs->byop_start[LG_OP__COUNT] = total;
  int32_t *byop = realloc(rs->byop, (size_t)(total ? total : 1) * sizeof *byop);
  if (!byop) return lg_ctx_fail(rs->ctx, LG_ERR_NOMEM, "rule set %s: out of memory", rs->name);
  rs->byop = byop;
  for (int32_t op = 0, k = 0; op < LG_OP__COUNT; op++)
    for (int32_t r = 0; r < rs->nrules; r++)
      if ((rs->rules[r].ops[op >> 6] >> (op & 63)) & 1) byop[k++] = r;
  rs->indexed = true;
  return LG_OK;
}

/* ---- the matcher -------------------------------------------------------------------------- */

lg_status lg_matcher_init(lg_matcher *m, lg_ruleset *rs, void *rctx, int32_t stats) {
  *m = (lg_matcher){.ctx = rs->ctx, .rs = rs, .rctx = rctx, .stats = stats};
  if (rs->max_tmpl && !(m->tmp = calloc((size_t)rs->max_tmpl * 2, sizeof *m->tmp)))
    return lg_ctx_fail(rs->ctx, LG_ERR_NOMEM, "graph_rewrite(%s): out of memory", rs->name);
  return LG_OK;
}

void lg_matcher_free(lg_matcher *m) {
  free(m->cells);
  free(m->choices);
  free(m->tmp);
  *m = (lg_matcher){0};
}

static lg_status nomem(lg_matcher *m) { return lg_ctx_fail(m->ctx, LG_ERR_NOMEM, "out of memory while matching"); }

static bool push_goal(lg_matcher *m, int32_t *goals, int32_t p, int32_t idx, lg_uop *u) {
  if (!lg_reserve(&m->cells, &m->capcells, (int64_t)m->ncells + 1, sizeof *m->cells)) return false;
  m->cells[m->ncells] = (lg_gcell){u, p, idx, *goals};
  *goals = m->ncells++;
  return true;
}

static bool push_choice(lg_matcher *m, int32_t p, int32_t alt, lg_uop *u, int32_t goals, int32_t preds) {
  if (!lg_reserve(&m->choices, &m->capchoices, (int64_t)m->nchoices + 1, sizeof *m->choices)) return false;
  m->choices[m->nchoices++] = (lg_choice){u, p, alt, goals, preds, m->ncells, m->ntrail};
  return true;
}

static uint32_t dt_class(lg_dtype dt) {
  if (lg_dtype_is_ptr(dt)) return 0;
  switch (lg_dtype_kind(dt)) {
  case 'b': return LG_DTC_BOOL;
  case 'i': return LG_DTC_SINT;
  case 'u': return LG_DTC_UINT;
  case 'f': return LG_DTC_FLOAT;
  default: return 0;
  }
}

static bool arg_ok(const lg_arg *want, const lg_arg *got) {
  bool wn = want->kind == LG_ARG_INT || want->kind == LG_ARG_FLOAT;
  bool gn = got->kind == LG_ARG_INT || got->kind == LG_ARG_FLOAT;
  if (!wn || !gn) return lg_arg_equal(want, got);
  if (want->kind == LG_ARG_INT && got->kind == LG_ARG_INT) return want->i == got->i;
  double a = want->kind == LG_ARG_INT ? (double)want->i : want->f;
  double b = got->kind == LG_ARG_INT ? (double)got->i : got->f;
  return a == b || (a != a && b != b);
}

static bool node_ok(const lg_ruleset *rs, const lg_pnode *pn, const lg_uop *u) {
  if (!((pn->ops[u->op >> 6] >> (u->op & 63)) & 1)) return false;
  if (pn->src_mode == LG_SRC_EXACT ? u->nsrc != pn->nsrc : pn->src_mode == LG_SRC_PREFIX && u->nsrc < pn->nsrc)
    return false;
  if (pn->ndt || pn->dtc) {
    bool in = (pn->dtc & dt_class(u->dtype)) != 0;
    for (int32_t i = 0; i < pn->ndt && !in; i++) in = rs->dts[pn->dt + i] == u->dtype;
    if (!in) return false;
  }
  return pn->arg < 0 || arg_ok(&rs->args[pn->arg], &u->arg);
}

static bool bind(lg_matcher *m, int32_t cap, lg_uop *u) {
  if (cap < 0) return true;
  if (m->caps[cap]) return m->caps[cap] == u;
  m->caps[cap] = u;
  m->trail[m->ntrail++] = cap;
  return true;
}

static lg_status call_pred(lg_matcher *m, int32_t fn, lg_uop *u, int32_t *ok) {
  const lg_rule_host *host = lg_ctx_host(m->ctx);
  if (!host || !host->call_pred) return lg_ctx_fail(m->ctx, LG_ERR_HOST, "no rule host to run a predicate");
  return host->call_pred(host->ud, m->ctx, m->rs->fns, fn, u, ok);
}

/* Resume at the latest choice point: its next alternative, or the swapped sources. */
static lg_status backtrack(lg_matcher *m, int32_t *goals, int32_t *preds, bool *more) {
  *more = m->nchoices > 0;
  if (!*more) return LG_OK;
  lg_choice c = m->choices[--m->nchoices];
  while (m->ntrail > c.trail) m->caps[m->trail[--m->ntrail]] = NULL;
  m->ncells = c.cells;
  *goals = c.goals;
  *preds = c.preds;
  const lg_pnode *pn = &m->rs->nodes[c.p];
  const int32_t *k = &m->rs->kids[pn->kid];
  bool ok;
  if (pn->kind == LG_PAT_ANY)
    ok = (c.alt + 1 >= pn->nsrc || push_choice(m, c.p, c.alt + 1, c.u, *goals, *preds)) &&
         push_goal(m, goals, k[c.alt], G_NODE, c.u);
  else
    ok = push_goal(m, goals, k[1], G_NODE, c.u->src[0]) && push_goal(m, goals, k[0], G_NODE, c.u->src[1]);
  return ok ? LG_OK : nomem(m);
}

/* Run the goals, then the deferred predicates, to the next full match (*found), or until no
 * choice is left. Resuming starts at the latest choice point. */
static lg_status solve(lg_matcher *m, int32_t goals, int32_t preds, bool resume, bool *found) {
  const lg_ruleset *rs = m->rs;
  bool ok = !resume;
  lg_status st;
  *found = false;
  for (;;) {
    if (!ok) {
      if ((st = backtrack(m, &goals, &preds, &ok))) return st;
      if (!ok) return LG_OK;
    }
    if (goals == G_NIL && preds == G_NIL) {
      *found = true;
      return LG_OK;
    }
    int32_t *list = goals != G_NIL ? &goals : &preds;
    lg_gcell g = m->cells[*list];
    *list = g.next;
    const lg_pnode *pn = &rs->nodes[g.p];
    const int32_t *k = &rs->kids[pn->kid];
    bool mem = true;
    if (g.idx >= 0) {
      if (g.idx < g.u->nsrc)
        mem = push_goal(m, &goals, g.p, g.idx + 1, g.u) && push_goal(m, &goals, k[0], G_NODE, g.u->src[g.idx]);
    } else if (g.idx == G_PRED) {
      int32_t pass = 0;
      if ((st = call_pred(m, pn->pred, g.u, &pass))) return st;
      ok = pass != 0;
    } else if (pn->kind == LG_PAT_ANY) {
      mem = (pn->nsrc < 2 || push_choice(m, g.p, 1, g.u, goals, preds)) && push_goal(m, &goals, k[0], G_NODE, g.u);
    } else if (!node_ok(rs, pn, g.u) || !bind(m, pn->cap, g.u)) {
      ok = false;
    } else {
      if (pn->pred >= 0) mem = push_goal(m, &preds, g.p, G_PRED, g.u);
      if (pn->src_mode == LG_SRC_EACH) {
        mem = mem && push_goal(m, &goals, g.p, 0, g.u);
      } else if (pn->src_mode != LG_SRC_ANY) {
        if (pn->comm && g.u->src[0] != g.u->src[1]) mem = mem && push_choice(m, g.p, 1, g.u, goals, preds);
        for (int32_t i = pn->nsrc - 1; i >= 0 && mem; i--) mem = push_goal(m, &goals, k[i], G_NODE, g.u->src[i]);
      }
    }
    if (!mem) return nomem(m);
  }
}

/* ---- templates ---------------------------------------------------------------------------- */

static lg_status make_const(lg_matcher *m, const lg_pnode *t, lg_dtype dt, lg_uop **out) {
  const lg_arg *a = &m->rs->args[t->arg];
  if (t->ndt == 1) dt = m->rs->dts[t->dt];
  return a->kind == LG_ARG_INT ? lg_uop_const_int(m->ctx, dt, a->i, out) : lg_uop_const_float(m->ctx, dt, a->f, out);
}

/* Template node i of rule ru into tmp[i]; its sources are built, except constants, whose dtype
 * comes from their siblings. */
static lg_status build_op(lg_matcher *m, const lg_rule *ru, int32_t i, lg_uop *root) {
  const lg_ruleset *rs = m->rs;
  const lg_pnode *t = &rs->nodes[ru->tmpl + i];
  const int32_t *k = &rs->kids[t->kid];
  lg_uop **tmp = m->tmp, **src = m->tmp + rs->max_tmpl;
  lg_dtype vd = root->dtype;
  for (int32_t j = t->op == LG_OP_WHERE ? 1 : 0; j < t->nsrc; j++)
    if (rs->nodes[k[j]].kind != LG_T_CONST) {
      vd = tmp[k[j] - ru->tmpl]->dtype;
      break;
    }
  for (int32_t j = 0; j < t->nsrc; j++) {
    int32_t s = k[j] - ru->tmpl;
    if (rs->nodes[k[j]].kind == LG_T_CONST) {
      lg_uop_release(tmp[s]);
      tmp[s] = NULL;
      lg_dtype dt = (t->op == LG_OP_WHERE && j == 0) ? lg_dtype_vec(LG_DT_BOOL, lg_dtype_lanes(vd)) : vd;
      lg_status st = make_const(m, &rs->nodes[k[j]], dt, &tmp[s]);
      if (st) return st;
    }
    src[j] = tmp[s];
  }
  lg_dtype dt = root->dtype;
  if (t->ndt == 1) dt = rs->dts[t->dt];
  else if (t->nsrc && lg_op_has(t->op, LG_OPF_CMP)) dt = lg_dtype_vec(LG_DT_BOOL, lg_dtype_lanes(src[0]->dtype));
  else if (t->nsrc == 3 && t->op == LG_OP_WHERE) dt = src[1]->dtype;
  else if (t->nsrc) dt = src[0]->dtype;
  return lg_uop_new(m->ctx, t->op, dt, src, t->nsrc, t->arg >= 0 ? &rs->args[t->arg] : NULL, &tmp[i]);
}

static lg_status instantiate(lg_matcher *m, const lg_rule *ru, lg_uop *root, lg_uop **out) {
  lg_uop **tmp = m->tmp;
  lg_status st = LG_OK;
  for (int32_t i = 0; i < ru->ntmpl; i++) tmp[i] = NULL;
  for (int32_t i = ru->ntmpl - 1; i >= 0 && !st; i--) {
    const lg_pnode *t = &m->rs->nodes[ru->tmpl + i];
    if (t->kind == LG_T_REF) {
      if (!(tmp[i] = lg_uop_retain(m->caps[t->cap])))
        st = lg_ctx_fail(m->ctx, LG_ERR_RULE, "template capture '%s' is not bound by this match", ru->capnames[t->cap]);
    } else if (t->kind == LG_T_OP) {
      st = build_op(m, ru, i, root);
    } else if (i == 0) {
      st = make_const(m, t, root->dtype, &tmp[0]);
    }
  }
  if (!st) *out = tmp[0], tmp[0] = NULL;
  for (int32_t i = 0; i < ru->ntmpl; i++) lg_uop_release(tmp[i]);
  return st;
}

/* ---- applying rules ----------------------------------------------------------------------- */

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static lg_status call_rule(lg_matcher *m, const lg_rule *ru, lg_uop *u, lg_uop **out) {
  const lg_rule_host *host = lg_ctx_host(m->ctx);
  if (!host || !host->call_rule) return lg_ctx_fail(m->ctx, LG_ERR_HOST, "no rule host to run the callback");
  lg_match mt = {.ncap = ru->ncap, .caps = m->caps, .names = (const char *const *)ru->capnames, .root = u};
  return host->call_rule(host->ud, m->ctx, m->rs->fns, ru->fn, &mt, m->rctx, out);
}

static lg_status try_rule(lg_matcher *m, lg_rule *ru, lg_uop *u, lg_uop **out) {
  int32_t goals = G_NIL;
  bool found, resume = false;
  lg_status st;
  m->ncells = m->nchoices = 0;
  if (!push_goal(m, &goals, ru->pat, G_NODE, u)) return nomem(m);
  while (!(st = solve(m, goals, G_NIL, resume, &found)) && found) {
    if (m->stats) ru->matches++;
    st = ru->ntmpl ? instantiate(m, ru, u, out)
         : ru->native ? natives[ru->native - 1].fn(m->ctx, u, out)
                      : call_rule(m, ru, u, out);
    if (st) break;
    if (*out == u) {
      lg_uop_release(*out);
      *out = NULL;
    }
    if (*out) {
      if (m->stats) ru->rewrites++;
      break;
    }
    resume = true;
  }
  while (m->ntrail) m->caps[m->trail[--m->ntrail]] = NULL;
  return st;
}

static bool has_op(const uint64_t *ops, int32_t op) { return (ops[op >> 6] >> (op & 63)) & 1; }

/* A cheap test on u's sources' ops that rules most candidates out before matching starts. */
static bool rejected(const lg_rule *ru, const lg_uop *u) {
  if (ru->qeach) {
    for (int32_t i = 0; i < u->nsrc; i++)
      if (!has_op(ru->qops[0], u->src[i]->op)) return true;
    return false;
  }
  if (!ru->qn) return false;
  if (u->nsrc != ru->qn) return true;
  if (has_op(ru->qops[0], u->src[0]->op) && (ru->qn == 1 || has_op(ru->qops[1], u->src[1]->op))) return false;
  return !(ru->qcomm && ru->qn == 2 && has_op(ru->qops[0], u->src[1]->op) && has_op(ru->qops[1], u->src[0]->op));
}

lg_status lg_matcher_apply(lg_matcher *m, lg_uop *u, lg_uop **out, int32_t *rule) {
  const lg_ruleset *rs = m->rs;
  *out = NULL;
  for (int32_t j = rs->byop_start[u->op]; j < rs->byop_start[u->op + 1]; j++) {
    lg_rule *ru = &rs->rules[rs->byop[j]];
    if (rejected(ru, u)) continue;
    int64_t t0 = m->stats ? now_ns() : 0;
    lg_status st = try_rule(m, ru, u, out);
    if (m->stats) ru->tries++, ru->ns += now_ns() - t0;
    if (st) {
      char msg[1024];
      snprintf(msg, sizeof msg, "%s", lg_ctx_error(m->ctx));
      return lg_ctx_fail(m->ctx, st, "%s: %s", ru->name, msg);
    }
    if (*out) {
      *rule = rs->byop[j];
      return LG_OK;
    }
  }
  return LG_OK;
}
