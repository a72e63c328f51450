/* linearize.h: a kernel graph (a SINK, docs/kernel_ir.md) as a flat list of instructions in
 * execution order, with its loops explicit (core/linearize.c). Renderers walk the list.
 *
 * Each node of the kernel appears once: a RANGE as the OPEN of its loop (and a CLOSE after its
 * body), a REDUCE as the INIT of its accumulator (placed before the first of its ranges opens;
 * the node's value is the accumulator once the ranges closed) plus one UPDATE (in the innermost
 * of its ranges), every other node as NODE. `depth` counts the loops open around an
 * instruction; an OPEN and its CLOSE are at the depth outside the loop.
 *
 * Placement: a node goes inside the loops of every RANGE it depends on, except ranges closed
 * below it by a REDUCE or an END. Ranges form a tree: a range nests inside every range with a
 * smaller axis that some node needs together with it, and nothing else, so independent loops
 * stay side by side. Inside one loop body, the order is the graph's (sources first, then
 * sources in order of the SINK's sources). A node may end up inside a loop it does not depend
 * on when that loop encloses a range it needs (a repeated computation or store of the same
 * value); a REDUCE may not (its update would accumulate too often): that, like other graphs
 * that break the rules of docs/kernel_ir.md, is LG_ERR_SPEC with a message naming the node. */
#ifndef LG_LINEARIZE_H
#define LG_LINEARIZE_H
#include "internal.h"

enum { LG_LIN_NODE = 0, LG_LIN_OPEN = 1, LG_LIN_CLOSE = 2, LG_LIN_INIT = 3, LG_LIN_UPDATE = 4 };

typedef struct lg_lin_inst {
  int32_t kind;  /* LG_LIN_* */
  int32_t depth; /* loops open around it (for OPEN and CLOSE: outside the loop) */
  lg_uop *u;     /* the node (borrowed: the SINK holds it); the RANGE for OPEN and CLOSE, the
                    REDUCE for INIT and UPDATE */
} lg_lin_inst;

typedef struct lg_linear {
  lg_lin_inst *inst;
  int64_t n;
} lg_linear;

/* Linearize the kernel rooted at sink. On success *out holds the list (free it with
 * lg_linear_free); on failure it is empty and the message is on ctx. */
lg_status lg_linearize(lg_ctx *ctx, lg_uop *sink, lg_linear *out);
void lg_linear_free(lg_linear *lin);

/* The loop a CPU kernel splits over its cores: the first output loop opened at the top level,
 * unless a STORE lies outside it or an accumulator spans it. *open is its OPEN's position (-1
 * when nothing is split), *trips its iterations (the upper bound of its end) and *work that of
 * one iteration (each node in its body counted as often as it runs, and as many times as the
 * kernel has vector lanes). Both C and LLVM renderers
 * use it, so that both devices split alike. */
lg_status lg_lin_split(lg_ctx *ctx, const lg_linear *L, int64_t *open, int64_t *trips, int64_t *work);

/* A float32 or float64 REDUCE ADD accumulates with fused multiply-adds, as BLAS does, in both
 * renderers alike: the terms of its value's tree of ADDs (the value and the ADDs only it uses,
 * left to right) go into terms[]; fused[i] says term i is a product only the tree uses, added as
 * acc = fma(a, b, acc), else acc = acc + term. A term WHERE(g, a * b, 0) whose a and b are loads
 * that read 0 where g is false (opt.pad's guard over gated loads) is its product a * b. users(ctx, x) is how many nodes of the kernel use x.
 * Returns the number of terms, or 0 when u is no such REDUCE (or has over LG_LIN_FMA_TERMS). */
enum { LG_LIN_FMA_TERMS = 64 };
int32_t lg_lin_fma_terms(const lg_uop *u, int32_t (*users)(const void *ctx, const lg_uop *x), const void *ctx,
                         const lg_uop **terms, bool *fused);

/* A kernel's vector lanes (a RANGE of kind LG_RANGE_LANES; docs/kernel_ir.md) as both renderers
 * see them. Slots number L's instructions other than CLOSE and UPDATE, in order, as the
 * renderers number theirs; slot(ctx, u) is node u's. */
typedef struct lg_lin_lanes {
  const lg_uop *lane;       /* the lanes' RANGE, or NULL */
  int32_t width;            /* its size */
  bool *vec;                /* per slot: the node's value is a vector of the lanes */
  bool *vacc;               /* per slot: a REDUCE's accumulator is a vector */
  const lg_uop **finish_at; /* per slot: a REDUCE over the lanes combines them after this loop's
                               CLOSE (NULL: right after its update) */
  lg_uop **finishing;       /* the REDUCEs with a finish_at */
  int64_t nfinishing;
} lg_lin_lanes;
/* Which nodes are vectors: the lanes' RANGE and what depends on it; a REDUCE over the lanes keeps
 * a vector accumulator (also of a scalar value) and is a scalar, one not over them with a vector
 * value is a vector. Errors (a second RANGE of lanes, a size that is not a constant power of 2
 * from 2 to 64, float16 or bfloat16 lanes) are LG_ERR_SPEC, "<who>: <node>: ...". Free *out
 * with lg_lin_lanes_free, also after an error. */
lg_status lg_lin_lanes_of(lg_ctx *ctx, const lg_linear *L, int64_t nslots,
                          int64_t (*slot)(const void *ctx, const lg_uop *u), const void *sctx, const char *who,
                          lg_lin_lanes *out);
void lg_lin_lanes_free(lg_lin_lanes *l);
/* A linear instruction of this kind has a node of its own (not a loop's CLOSE or UPDATE). */
bool lg_lin_has_slot(int32_t kind);

/* What the operands' bounds prove about integer operation u, for a renderer to drop checks. */
typedef struct lg_lin_facts {
  bool nowrap;      /* the result stays in range */
  bool div_plain;   /* IDIV/MOD: no division by 0 or INT_MIN / -1 */
  bool shift_plain; /* the amount is in [0, bits) */
  bool nonneg;      /* the first operand is >= 0 */
} lg_lin_facts;
lg_lin_facts lg_lin_facts_of(const lg_uop *u);

/* The op of a kernel REDUCE node (its arg "ADD", "MUL" or "MAX"), or -1. */
int32_t lg_lin_reduce_op(const lg_uop *u);
/* What a renderer of scalar kernels cannot take in node u (buffers, accesses, reductions,
 * dtypes): a message written to msg, or NULL when u is fine; `who` names the renderer in it
 * ("the C renderer"). */
const char *lg_lin_check_node(const lg_uop *u, const char *who, char *msg, size_t size);

/* A node for messages: "RANGE int32 (axis 1)", "REDUCE float32 ADD", "STORE"; returns buf. */
const char *lg_lin_describe(const lg_uop *u, char *buf, size_t size);

#endif
