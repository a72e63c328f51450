/* ops.c: the op table, generated from ops.def. */
#include <string.h>

#include "internal.h"

const lg_opinfo lg_ops[LG_OP__COUNT] = {
#define LG_OP(name, min_src, max_src, flags) {#name, min_src, max_src, flags},
#include "ops.def"
#undef LG_OP
};

_Static_assert(sizeof lg_ops / sizeof lg_ops[0] == LG_OP__COUNT, "ops.def: one row per op");
_Static_assert(LG_OP__COUNT <= 128, "pattern op sets are 128-bit masks");

int32_t lg_op_count(void) { return LG_OP__COUNT; }

const char *lg_op_name(int32_t op) {
  return (op >= 0 && op < LG_OP__COUNT) ? lg_ops[op].name : "?";
}

int32_t lg_op_lookup(const char *name) {
  for (int32_t i = 0; i < LG_OP__COUNT; i++)
    if (strcmp(lg_ops[i].name, name) == 0) return i;
  return -1;
}

uint32_t lg_op_flags(int32_t op) { return (op >= 0 && op < LG_OP__COUNT) ? lg_ops[op].flags : 0; }
int32_t lg_op_min_src(int32_t op) { return (op >= 0 && op < LG_OP__COUNT) ? lg_ops[op].min_src : 0; }
int32_t lg_op_max_src(int32_t op) { return (op >= 0 && op < LG_OP__COUNT) ? lg_ops[op].max_src : 0; }
