/* render_c.h: what the C renderer's two files share, private to them: devices/cpu/render_c.c
 * (kernels as C) and devices/cpu/render_c_vec.c (their vector lanes). The renderer's state, C
 * text with its precedence, and the functions one file calls in the other (prefix lg_rc_). */
#ifndef LG_RENDER_C_H
#define LG_RENDER_C_H
#include <stddef.h>

#include "linearize.h"
#include "ptrmap.h"
#include "strbuf.h"

enum { INLINE_MAX = 100 };

/* C precedence levels: higher binds tighter */
enum {
  P_ANY = 0,
  P_COND = 3,
  P_BOR = 6,
  P_BXOR = 7,
  P_BAND = 8,
  P_EQ = 9,
  P_REL = 10,
  P_SHIFT = 11,
  P_ADD = 12,
  P_MUL = 13,
  P_UNARY = 14,
  P_PRIMARY = 15
};

/* helpers a kernel may need, emitted once each */
enum {
  H_BF16, H_BF16_DOUBLE, H_ODD, H_MAX, H_IDIV, H_MOD, H_SHL, H_SHR, H_FTOI, H_BITCAST, /* scalar */
  H_VTYPE, H_VALL, H_VWHERE, H_VMAX, H_VLOAD, H_VSTORE, H_VINTRIN, H_VGATHER, H_VFMA, H_VLANES, H_VLOAD2,
  H_VLOADH /* vector lanes (render_c_vec.c) */
};

typedef struct expr {
  char *s;      /* C text; NULL when out of memory */
  int32_t prec; /* how tightly it binds */
} expr;

typedef struct rnd {
  lg_ctx *ctx;
  lg_linear lin;
  lg_ptrmap slot;   /* node -> its slot + 1 */
  lg_ptrmap stored; /* DEFINE_GLOBALs the kernel stores into */
  int64_t nslots;
  expr *ex;         /* per slot: the node's C text */
  int64_t *refs;    /* per slot: how often the text is used */
  int32_t *users;   /* per slot: how many nodes of the kernel use the node */
  lg_uop **globals; /* DEFINE_GLOBALs by slot */
  int64_t nglobals;
  lg_uop **vars; /* DEFINE_VARs by name */
  int64_t nvars;
  uint32_t *helpers; /* keys of the helpers emitted */
  int32_t nhelpers, caphelpers;
  lg_strbuf pre, body;
  int32_t nval, nalu, nacc;
  int64_t split_open;              /* the split loop's OPEN; -1 when none */
  lg_lin_lanes ln;                 /* the vector lanes (opt.vectorize) */
  int64_t split_trips, split_work; /* its iterations, the work of one */
  bool oom;
} rnd;

/* ---- render_c.c ---- */

/* fail with LG_ERR_SPEC: "render C: <node>: <message>" */
lg_status lg_rc_fail(rnd *r, const lg_uop *u, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* text from a template: each `$` takes a `const expr *` and the precedence it must bind at least
 * as tightly as (int), else it is parenthesized */
expr lg_rc_build(rnd *r, int32_t prec, const char *tmpl, ...);
/* a line of the function's body, indented by its loop depth */
void lg_rc_line(rnd *r, int32_t depth, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

int32_t lg_rc_sid(lg_dtype dt);
bool lg_rc_narrow(lg_dtype dt);  /* under 4 bytes */
bool lg_rc_is_bf16(lg_dtype dt);
const char *lg_rc_ctype(lg_dtype dt); /* the C type of a value */
const char *lg_rc_sfx(lg_dtype dt);   /* short dtype names for helpers: f32, i8 */
expr lg_rc_literal(rnd *r, lg_dtype dt, int64_t i, double f);

/* emit helper (kind, a, b) and what it needs, once */
void lg_rc_need(rnd *r, int32_t kind, lg_dtype a, lg_dtype b);

/* scalar operations: an ALU op on operands of dtype dt (the result's, except for comparisons),
 * CAST, BITCAST */
expr lg_rc_op_expr(rnd *r, int32_t op, lg_dtype dt, const expr *a, const expr *b, const expr *c, lg_lin_facts f);
expr lg_rc_cast_expr(rnd *r, lg_dtype to, lg_dtype from, const expr *a);
expr lg_rc_bitcast_expr(rnd *r, lg_dtype to, lg_dtype from, const expr *a);

int64_t lg_rc_slot_of(const rnd *r, const lg_uop *u);
expr *lg_rc_ex(const rnd *r, const lg_uop *u); /* the node's C text */
void lg_rc_set_name(rnd *r, const lg_uop *u, const char *fmt, int64_t n);
/* buffer access through an INDEX: data1[i], as a value for bfloat16 */
void lg_rc_access_tmpl(const lg_uop *idx, char *out, size_t size);
int32_t lg_rc_users_of(const void *r, const lg_uop *u); /* for lg_lin_fma_terms */

/* ---- render_c_vec.c ---- */

bool lg_rc_is_vec(const rnd *r, const lg_uop *u);
/* the vector helpers of lg_rc_need (kinds from H_VTYPE on) */
void lg_rc_vec_helper(rnd *r, int32_t kind, lg_dtype a, lg_dtype b);
/* accesses of whole vectors, of every other element and of each element twice: true with the
 * base of the index (ADD(base, lane) and so on) */
bool lg_rc_contiguous(const rnd *r, const lg_uop *idx, const lg_uop **base);
bool lg_rc_strided2(const rnd *r, const lg_uop *idx, const lg_uop **base);
bool lg_rc_halves(const rnd *r, const lg_uop *idx, const lg_uop **base);
bool lg_rc_lane_loop(const rnd *r, const lg_uop *u); /* a vector node computed lane by lane */

/* the vector nodes as C */
void lg_rc_lanes_value(rnd *r, const lg_lin_inst *in);
void lg_rc_vload(rnd *r, const lg_lin_inst *in);
void lg_rc_vstore(rnd *r, const lg_lin_inst *in);
void lg_rc_vvalue(rnd *r, const lg_lin_inst *in);
void lg_rc_vreduce_init(rnd *r, const lg_lin_inst *in);
void lg_rc_vreduce_update(rnd *r, const lg_lin_inst *in);
void lg_rc_vreduce_finish(rnd *r, const lg_uop *u, int32_t depth);
#endif
