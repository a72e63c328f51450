/* render_llvm.h: what the LLVM renderer's two files share, private to them:
 * devices/llvm/render_llvm.c (kernels as LLVM IR) and devices/llvm/render_llvm_vec.c (their
 * vector lanes). The renderer's state, IR text, and the functions one file calls in the other
 * (prefix lg_rl_). Functions of a width work at r->w: scalars, or vectors of the lanes. */
#ifndef LG_RENDER_LLVM_H
#define LG_RENDER_LLVM_H
#include <stddef.h>

#include "linearize.h"
#include "ptrmap.h"
#include "strbuf.h"

/* an operand as IR text: a register ("%alu3") or a constant ("5", "0x3FF0000000000000") */
typedef struct val {
  char s[40];
} val;

/* an IR type or an intrinsic's suffix as text: float, <16 x float>, v16f32 */
typedef struct tname {
  char s[24];
} tname;

/* an open loop */
typedef struct loop {
  int32_t label; /* loop<label>, loop<label>.body, .latch, .exit */
  val ridx;
} loop;

typedef struct rnd {
  lg_ctx *ctx;
  lg_linear lin;
  lg_ptrmap slot;   /* node -> its slot + 1 */
  lg_ptrmap stored; /* DEFINE_GLOBALs the kernel stores into */
  int64_t nslots;
  val *vals;        /* per slot: the node's value (for a REDUCE: its accumulator's address) */
  lg_uop **globals; /* DEFINE_GLOBALs by slot */
  int64_t nglobals;
  lg_uop **vars; /* DEFINE_VARs by name */
  int64_t nvars;
  loop *loops; /* the loops open now, innermost last */
  int64_t nloops;
  uint32_t helpers; /* H_* emitted */
  lg_strbuf pre, allocas, body;
  int32_t nname, nlabel;
  char block[32]; /* the basic block instructions go into now */
  int64_t split_open;              /* the split loop's OPEN; -1 when none */
  int64_t split_trips, split_work; /* its iterations, the work of one */
  int32_t w;                       /* the width of the value being written: 0 (a scalar) or lanes */
  int32_t *users;                  /* per slot: how many nodes of the kernel use the node */
  lg_lin_lanes ln;                 /* the vector lanes (opt.vectorize) */
  bool oom;
} rnd;

/* ---- render_llvm.c ---- */

/* fail with LG_ERR_SPEC: "render LLVM: <node>: <message>" */
lg_status lg_rl_fail(rnd *r, const lg_uop *u, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* an instruction without a result */
void lg_rl_emit(rnd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* an instruction whose result is a new register %<prefix><n> (lg_rl_inst: %alu<n>) */
val lg_rl_define(rnd *r, const char *prefix, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
val lg_rl_inst(rnd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* declare an intrinsic once: "declare <ret> @<name>(<args>)" */
void lg_rl_declare(rnd *r, const char *ret, const char *name, const char *args);

int32_t lg_rl_sid(lg_dtype dt);
int32_t lg_rl_bits(lg_dtype dt);
bool lg_rl_is_bf16(lg_dtype dt);
bool lg_rl_is_f16(lg_dtype dt);
bool lg_rl_is_signed(lg_dtype dt);
const char *lg_rl_ty(lg_dtype dt);  /* the IR type of a value: i32, float */
const char *lg_rl_mty(lg_dtype dt); /* ... of an element in memory: i8 for bool, i16 for float16 */
const char *lg_rl_sfx(lg_dtype dt); /* an intrinsic's suffix for a scalar: f32, i8, i1 */
val lg_rl_text(const char *s);
val lg_rl_literal(lg_dtype dt, int64_t i, double f); /* a scalar constant */

/* at the width being written */
tname lg_rl_wty(const rnd *r, lg_dtype dt); /* float, <16 x float> */
tname lg_rl_wbool(const rnd *r);
tname lg_rl_wsfx(const rnd *r, lg_dtype dt); /* f32, v16f32 */
val lg_rl_wconst(rnd *r, lg_dtype dt, int64_t i, double f);

int64_t lg_rl_slot_of(const rnd *r, const lg_uop *u);
val *lg_rl_vl(const rnd *r, const lg_uop *u); /* the node's value */
bool lg_rl_is_vec(const rnd *r, const lg_uop *u);
lg_dtype lg_rl_acc_dt(const lg_uop *u); /* the dtype a REDUCE's accumulator holds */
/* a node's value where it is used (a REDUCE's loaded from its accumulator); lg_rl_vop: as a
 * vector, a scalar put in every lane */
val lg_rl_operand(rnd *r, const lg_uop *u);
val lg_rl_vop(rnd *r, const lg_uop *u);
/* the address of an INDEX's element i; inbounds: a getelementptr inbounds (the address lies in
 * the buffer) */
val lg_rl_address(rnd *r, const lg_uop *idx, val i, bool inbounds);
/* branch around code under a scalar gate: gate_open, the gated code, gate_close */
int32_t lg_rl_gate_open(rnd *r, val gate, const char *what, char *from, size_t size);
void lg_rl_gate_close(rnd *r, int32_t k);
val lg_rl_to_memory(rnd *r, lg_dtype dt, val v); /* a STORE's value as its element in memory */
void lg_rl_new_acc(rnd *r, const lg_uop *u, const char *t); /* an alloca of type t */

/* ---- render_llvm_vec.c ---- */

/* which nodes are vectors, which REDUCEs keep a vector accumulator and when they reduce it */
/* the vector nodes as IR */
void lg_rl_lanes_value(rnd *r, const lg_lin_inst *in);
void lg_rl_vload(rnd *r, const lg_lin_inst *in);
void lg_rl_vstore(rnd *r, const lg_lin_inst *in);
/* a REDUCE over the lanes, once its loops are done: its lanes reduced into a scalar accumulator */
void lg_rl_reduce_finish(rnd *r, const lg_uop *u);
#endif
