/* dtype.c: dtype values, names and promotion. The scalar table comes from dtypes.def. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

typedef struct {
  const char *name;
  int32_t itemsize;
  char kind;
} dtinfo;

static const dtinfo dts[LG_DT__COUNT] = {
#define LG_DT(NAME, name, ctype, itemsize, kind, priority) {#name, itemsize, kind},
#include "dtypes.def"
#undef LG_DT
};
_Static_assert(sizeof dts / sizeof dts[0] == LG_DT__COUNT, "dtypes.def: one row per dtype");

enum { LANES_SHIFT = 8, ADDR_SHIFT = 24, MAX_LANES = 1 << 16 };

int32_t lg_dtype_count(void) { return LG_DT__COUNT; }

int32_t lg_dtype_lookup(const char *name) {
  for (int32_t i = 0; i < LG_DT__COUNT; i++)
    if (strcmp(dts[i].name, name) == 0) return i;
  return -1;
}

int32_t lg_dtype_is_valid(lg_dtype dt) {
  return lg_dt_scalar_id(dt) < LG_DT__COUNT && (dt >> 26) == 0 &&
         !(lg_dt_scalar_id(dt) == LG_DT_VOID && ((dt >> LANES_SHIFT) & 0xffffu) != 0);
}

lg_dtype lg_dtype_scalar(lg_dtype dt) { return dt & 0xffu; }
uint32_t lg_dtype_lanes(lg_dtype dt) { return ((dt >> LANES_SHIFT) & 0xffffu) + 1; }
int32_t lg_dtype_is_ptr(lg_dtype dt) { return (dt >> ADDR_SHIFT) != 0; }
int32_t lg_dtype_addrspace(lg_dtype dt) { return (int32_t)(dt >> ADDR_SHIFT) - 1; }
lg_dtype lg_dtype_base(lg_dtype dt) { return dt & ((1u << ADDR_SHIFT) - 1); }

lg_dtype lg_dtype_vec(lg_dtype dt, uint32_t lanes) {
  if (lanes == 0 || lanes > MAX_LANES) lanes = 1;
  return (dt & ~(0xffffu << LANES_SHIFT)) | ((lanes - 1) << LANES_SHIFT);
}

lg_dtype lg_dtype_ptr(lg_dtype dt, int32_t addrspace) {
  if (addrspace < LG_ADDR_GLOBAL || addrspace > LG_ADDR_REG) addrspace = LG_ADDR_GLOBAL;
  return lg_dtype_base(dt) | ((uint32_t)(addrspace + 1) << ADDR_SHIFT);
}

int32_t lg_dtype_itemsize(lg_dtype dt) {
  if (lg_dtype_is_ptr(dt)) return 8;
  return dts[lg_dt_scalar_id(dt) % LG_DT__COUNT].itemsize * (int32_t)lg_dtype_lanes(dt);
}

char lg_dtype_kind(lg_dtype dt) { return dts[lg_dt_scalar_id(dt) % LG_DT__COUNT].kind; }

bool lg_dt_is_float(lg_dtype dt) { return lg_dtype_kind(dt) == 'f'; }
bool lg_dt_is_int(lg_dtype dt) { return lg_dtype_kind(dt) == 'i' || lg_dtype_kind(dt) == 'u'; }
bool lg_dt_is_unsigned(lg_dtype dt) { return lg_dtype_kind(dt) == 'u'; }

bool lg_dt_int_range(lg_dtype dt, int64_t *lo, int64_t *hi) {
  char k = lg_dtype_kind(dt);
  int32_t bits = 8 * dts[lg_dt_scalar_id(dt) % LG_DT__COUNT].itemsize;
  if (k == 'b') {
    *lo = 0, *hi = 1;
  } else if (k == 'i') {
    *lo = bits == 64 ? INT64_MIN : -(INT64_C(1) << (bits - 1));
    *hi = bits == 64 ? INT64_MAX : (INT64_C(1) << (bits - 1)) - 1;
  } else if (k == 'u' && bits < 64) {
    *lo = 0, *hi = (INT64_C(1) << bits) - 1;
  } else {
    return false;
  }
  return true;
}

int32_t lg_dtype_name(lg_dtype dt, char *buf, size_t size) {
  if (!lg_dtype_is_valid(dt)) return snprintf(buf, size, "<bad dtype 0x%x>", dt);
  const char *base = dts[lg_dt_scalar_id(dt)].name;
  uint32_t lanes = lg_dtype_lanes(dt);
  static const char *const space[] = {"", " local", " reg"};
  const char *ptr = lg_dtype_is_ptr(dt) ? "*" : "";
  const char *addr = lg_dtype_is_ptr(dt) ? space[lg_dtype_addrspace(dt)] : "";
  if (lanes > 1) return snprintf(buf, size, "%sx%u%s%s", base, lanes, addr, ptr);
  return snprintf(buf, size, "%s%s%s", base, addr, ptr);
}

/* PyTorch's rules: the higher category wins (bool < integer < float); inside a category the
 * wider type wins; float16 with bfloat16 gives float32. PyTorch has no rule for unsigned types
 * wider than uint8 mixed with signed ones; there we follow numpy (the smallest signed type that
 * holds both, float64 for uint64 with a signed type). */
lg_status lg_dtype_promote(lg_ctx *ctx, lg_dtype a, lg_dtype b, lg_dtype *out) {
  char na[32], nb[32];
  if (!lg_dt_is_plain(a) || !lg_dt_is_plain(b) || lg_dtype_kind(a) == 'v' || lg_dtype_kind(b) == 'v') {
    lg_dtype_name(a, na, sizeof na);
    lg_dtype_name(b, nb, sizeof nb);
    return lg_ctx_fail(ctx, LG_ERR_ARG, "promote: %s and %s are not both scalar dtypes", na, nb);
  }
  if (a == b) return *out = a, LG_OK;
  static const int cat[128] = {['b'] = 0, ['i'] = 1, ['u'] = 1, ['f'] = 2};
  char ka = lg_dtype_kind(a), kb = lg_dtype_kind(b);
  int32_t sa = lg_dtype_itemsize(a), sb = lg_dtype_itemsize(b);
  if (cat[(int)ka] != cat[(int)kb]) return *out = cat[(int)ka] > cat[(int)kb] ? a : b, LG_OK;
  if (ka == 'f') {
    if (sa == sb) return *out = LG_DT_FLOAT32, LG_OK; /* float16 with bfloat16 */
    return *out = sa > sb ? a : b, LG_OK;
  }
  if (ka == kb) return *out = sa > sb ? a : b, LG_OK;
  lg_dtype u = ka == 'u' ? a : b, s = ka == 'u' ? b : a;
  int32_t su = lg_dtype_itemsize(u), ss = lg_dtype_itemsize(s);
  if (ss > su) return *out = s, LG_OK;
  static const lg_dtype signed_of[9] = {[1] = LG_DT_INT8, [2] = LG_DT_INT16, [4] = LG_DT_INT32, [8] = LG_DT_INT64};
  if (su < 8) return *out = signed_of[su * 2], LG_OK;
  return *out = LG_DT_FLOAT64, LG_OK;
}
