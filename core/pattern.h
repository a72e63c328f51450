/* pattern.h: compiled rule sets (flat arrays of pattern nodes) and the matcher that
 * core/rewrite.c drives. Hosts build rule sets with lg_ruleset_new/lg_ruleset_add (luagrad.h). */
#ifndef LG_PATTERN_H
#define LG_PATTERN_H
#include <stddef.h>

#include "internal.h"

enum { LG_MAX_CAPS = 32 };                          /* distinct capture names in one rule */
enum { LG_T_REF = 16, LG_T_CONST = 17, LG_T_OP = 18 }; /* template node kinds (next to LG_PAT_*) */

/* One pattern or template node. Its sources are rs->nodes[rs->kids[kid + i]], i < nsrc; in a
 * template every source has a larger index than its parent, so building runs back to front. */
typedef struct lg_pnode {
  uint64_t ops[2]; /* op set, one bit per op */
  int32_t kind;    /* LG_PAT_OP, LG_PAT_ANY, or a template kind LG_T_* */
  int32_t src_mode, nsrc, kid;
  int32_t dt, ndt; /* dtype list: rs->dts[dt .. dt+ndt) */
  uint32_t dtc;    /* dtype classes (LG_DTC_*) */
  int32_t arg;     /* index in rs->args, -1: any arg */
  int32_t cap;     /* capture slot (or the slot a template reference reads), -1: none */
  int32_t pred;    /* host predicate index, -1: none */
  int32_t op;      /* LG_T_OP: the op to build */
  int32_t comm;    /* 2 sources, also tried swapped */
} lg_pnode;

typedef struct lg_walkbuf lg_walkbuf; /* a rewrite's buffers (core/rewrite.c) */
void lg_walkbuf_free(lg_walkbuf *b);

typedef struct lg_rule {
  char *name;
  int32_t pat;         /* root pattern node */
  int32_t tmpl, ntmpl; /* template nodes [tmpl, tmpl + ntmpl), root first; ntmpl 0: a callback */
  int32_t fn;          /* host callback index, or -1 */
  int32_t native;      /* native result id, or 0 */
  int32_t ncap;
  char **capnames;     /* by slot */
  uint64_t ops[2];     /* ops the root can match (the index) */
  int32_t qn;          /* early reject: 1 or 2 exact sources whose ops must be in qops */
  bool qcomm;          /* ... in either order */
  bool qeach;          /* or: every source's op must be in qops[0] */
  uint64_t qops[2][2];
  int64_t tries, matches, rewrites, ns;
} lg_rule;

struct lg_ruleset {
  lg_ctx *ctx;
  uint32_t refcnt;
  int32_t busy; /* rewrites running with this set: adding rules is refused meanwhile */
  char *name;
  void *fns;    /* the host's handle for callbacks and predicates */
  lg_pnode *nodes;
  int32_t nnodes, capnodes;
  int32_t *kids;
  int32_t nkids, capkids;
  lg_dtype *dts;
  int32_t ndts, capdts;
  lg_arg *args; /* strings and int lists are owned copies */
  int32_t nargs, capargs;
  lg_rule *rules;
  int32_t nrules, caprules;
  int32_t max_tmpl; /* largest template, for the matcher's scratch */
  bool indexed;     /* byop is current */
  lg_walkbuf *spare; /* the last rewrite's buffers, for the next */
  int32_t byop_start[LG_OP__COUNT + 1];
  int32_t *byop;    /* rule indices by root op, in rule order */
};

typedef struct lg_gcell lg_gcell;
typedef struct lg_choice lg_choice;

/* Scratch state of matching, reused for every node of one rewrite: no allocation per node once
 * the arrays have grown to the largest match. */
typedef struct lg_matcher {
  lg_ctx *ctx;
  lg_ruleset *rs;
  void *rctx;
  int32_t stats;
  lg_uop *caps[LG_MAX_CAPS];
  int32_t trail[LG_MAX_CAPS]; /* capture slots in binding order, undone on backtracking */
  int32_t ntrail;
  lg_gcell *cells; /* goals: persistent lists in an arena, cut back on backtracking */
  int32_t ncells, capcells;
  lg_choice *choices;
  int32_t nchoices, capchoices;
  lg_uop **tmp; /* template instantiation, rs->max_tmpl slots */
} lg_matcher;

/* Grow the array *pp (elements of `size` bytes, capacity *cap) to hold `need`; false when out
 * of memory (the array is then unchanged). */
bool lg_reserve(void *pp, int32_t *cap, int64_t need, size_t size);
/* Build the root-op index when rules were added since it was built. */
lg_status lg_ruleset_index(lg_ruleset *rs);
lg_status lg_matcher_init(lg_matcher *m, lg_ruleset *rs, void *rctx, int32_t stats);
void lg_matcher_free(lg_matcher *m);
/* Try the rules that can match u's op, in order; for each, every match in turn. The first
 * result that is a node other than u wins: *out is a new reference and *rule its rule, or
 * *out is NULL when no rule changes u. */
lg_status lg_matcher_apply(lg_matcher *m, lg_uop *u, lg_uop **out, int32_t *rule);

#endif
