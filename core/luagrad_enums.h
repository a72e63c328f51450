/* luagrad_enums.h: LG_OP_* and LG_DT_* constants, generated from ops.def and dtypes.def.
 * For C hosts; LuaJIT FFI users look ops and dtypes up by name instead. */
#ifndef LUAGRAD_ENUMS_H
#define LUAGRAD_ENUMS_H

enum lg_op_id {
#define LG_OP(name, min_src, max_src, flags) LG_OP_##name,
#include "ops.def"
#undef LG_OP
  LG_OP__COUNT
};

enum lg_dt_id {
#define LG_DT(NAME, name, ctype, itemsize, kind, priority) LG_DT_##NAME,
#include "dtypes.def"
#undef LG_DT
  LG_DT__COUNT
};

/* op flags (lg_op_flags) */
enum lg_op_flag {
  LG_OPF_ALU = 1u << 0,
  LG_OPF_UNARY = 1u << 1,
  LG_OPF_BINARY = 1u << 2,
  LG_OPF_TERNARY = 1u << 3,
  LG_OPF_COMM = 1u << 4,
  LG_OPF_ASSOC = 1u << 5,
  LG_OPF_IDEM = 1u << 6,
  LG_OPF_CMP = 1u << 7,
  LG_OPF_MOVE = 1u << 8,
  LG_OPF_FLOATOK = 1u << 9,
  LG_OPF_INTOK = 1u << 10,
  LG_OPF_BOOLOK = 1u << 11
};

/* the kinds of a kernel RANGE (its arg {axis, kind}; docs/kernel_ir.md) */
enum lg_range_kind {
  LG_RANGE_OUTPUT = 0, /* an output loop */
  LG_RANGE_REDUCE = 1, /* a reduce loop */
  LG_RANGE_LANES = 2   /* vector lanes: no loop; the values that depend on it are vectors */
};

#endif
