/* lua_device.c: devices, buffers and programs from Lua.
 *   core.buffer(device, dtype, n) -> Buffer of n elements; buf:write(values [, first]),
 *   buf:read([first [, count]]) -> list, buf:write_bytes(s [, byte offset]), buf:read_bytes();
 *   fields dtype, device, nbytes, id (one per buffer, whatever the handle), #buf. Element
 *   positions are 1-based here, as everywhere in Lua.
 *   core.program(device, source, entry) -> Program; prog:launch({buf...} [, {int...} [, ncores
 *   [, sample]]]) (sample: run only the first cores, CPU).
 *   core.programs(device, {source...}, {entry...}) -> {Program or error message...}, compiled at
 *   once. core.cache_path(device, folder, text) -> a file name for text in a folder of the cache.
 *   core.buffer_node(buf) -> a BUFFER UOp holding buf; core.node_buffer(u) -> that Buffer.
 *   core.render_c(sink, name) -> C source of a kernel for the CPU device.
 *   core.render(device, sink, name) -> the kernel's source for that device's compiler: C for CPU,
 *   LLVM IR for LLVM.
 *   core.device_stats(device) -> {compiles =, disk_hits =, memory_hits =, ...}. */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "lgl.h"

#define LGL_BUFFER "luagrad.Buffer"
#define LGL_PROGRAM "luagrad.Program"

typedef struct {
  lg_buffer *buf; /* NULL once released */
  lg_dtype dtype;
  int64_t n;
} buf_box;

typedef struct {
  lg_program *prog;
} prog_box;

static lg_device *check_device(lua_State *L, int idx) {
  lg_ctx *ctx = lgl_ctx(L);
  lg_device *dev;
  if (lg_device_get(ctx, luaL_checkstring(L, idx), &dev)) lgl_fail(L, ctx);
  return dev;
}

static buf_box *check_buf(lua_State *L, int idx) {
  buf_box *b = luaL_checkudata(L, idx, LGL_BUFFER);
  if (!b->buf) luaL_argerror(L, idx, "the buffer is released");
  return b;
}

static int l_buffer(lua_State *L) {
  lg_device *dev = check_device(L, 1);
  lg_dtype dt = lgl_check_dtype(L, 2);
  lua_Integer n = luaL_checkinteger(L, 3);
  int32_t size = lg_dtype_itemsize(dt);
  luaL_argcheck(L, !lg_dtype_is_ptr(dt) && lg_dtype_lanes(dt) == 1 && size > 0, 2, "a buffer holds values of a scalar dtype");
  luaL_argcheck(L, n >= 0 && n <= INT64_MAX / 64, 3, "the element count must be >= 0");
  buf_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  *b = (buf_box){.dtype = dt, .n = n};
  luaL_setmetatable(L, LGL_BUFFER);
  lg_ctx *ctx = lgl_ctx(L);
  if (lg_buffer_new(ctx, dev, n * size, &b->buf)) return lgl_fail(L, ctx);
  return 1;
}

static int buf_gc(lua_State *L) {
  buf_box *b = luaL_checkudata(L, 1, LGL_BUFFER);
  lg_buffer_release(b->buf);
  b->buf = NULL;
  return 0;
}

/* first (1-based) and count of elements from the arguments at idx, idx+1, checked against n */
static void span(lua_State *L, int idx, int64_t n, int64_t want, int64_t *first, int64_t *count) {
  *first = luaL_optinteger(L, idx, 1) - 1;
  *count = want >= 0 ? want : luaL_optinteger(L, idx + 1, n - *first);
  if (*first < 0 || *count < 0 || *first > n || *count > n - *first)
    luaL_error(L, "buffer: elements %I..%I are outside 1..%I", (lua_Integer)*first + 1,
               (lua_Integer)(*first + *count), (lua_Integer)n);
}

static int buf_write(lua_State *L) {
  buf_box *b = check_buf(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int64_t first, count, len = (int64_t)lua_rawlen(L, 2);
  span(L, 3, b->n, len, &first, &count);
  int32_t size = lg_dtype_itemsize(b->dtype);
  char *bytes = lua_newuserdatauv(L, (size_t)(count ? count : 1) * (size_t)size, 0);
  for (int64_t i = 0; i < count; i++) {
    lg_arg v = {.kind = LG_ARG_INT};
    int t = lua_rawgeti(L, 2, (lua_Integer)i + 1);
    if (t == LUA_TBOOLEAN) v.i = lua_toboolean(L, -1);
    else if (lua_isinteger(L, -1)) v.i = lua_tointeger(L, -1);
    else if (t == LUA_TNUMBER) v.kind = LG_ARG_FLOAT, v.f = lua_tonumber(L, -1);
    else return luaL_error(L, "buffer:write: item %I is a %s, not a number", (lua_Integer)i + 1, luaL_typename(L, -1));
    lua_pop(L, 1);
    lg_value_to_bytes(b->dtype, &v, bytes + i * size);
  }
  lg_ctx *ctx = lgl_ctx(L);
  if (count && lg_buffer_write(b->buf, first * size, bytes, count * size)) return lgl_fail(L, ctx);
  return 0;
}

static int buf_read(lua_State *L) {
  buf_box *b = check_buf(L, 1);
  int64_t first, count;
  span(L, 2, b->n, -1, &first, &count);
  int32_t size = lg_dtype_itemsize(b->dtype);
  char *bytes = lua_newuserdatauv(L, (size_t)(count ? count : 1) * (size_t)size, 0);
  lg_ctx *ctx = lgl_ctx(L);
  if (count && lg_buffer_read(b->buf, first * size, bytes, count * size)) return lgl_fail(L, ctx);
  lua_createtable(L, (int)count, 0);
  bool is_bool = lg_dtype_kind(b->dtype) == 'b';
  for (int64_t i = 0; i < count; i++) {
    lg_arg v;
    lg_value_from_bytes(b->dtype, bytes + i * size, &v);
    if (v.kind == LG_ARG_FLOAT) lua_pushnumber(L, v.f);
    else if (is_bool) lua_pushboolean(L, v.i != 0);
    else lua_pushinteger(L, v.i);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int buf_write_bytes(lua_State *L) {
  buf_box *b = check_buf(L, 1);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  lua_Integer off = luaL_optinteger(L, 3, 0);
  lg_ctx *ctx = lgl_ctx(L);
  if (lg_buffer_write(b->buf, off, s, (int64_t)len)) return lgl_fail(L, ctx);
  return 0;
}

static int buf_read_bytes(lua_State *L) {
  buf_box *b = check_buf(L, 1);
  int64_t nbytes = lg_buffer_size(b->buf);
  luaL_Buffer lb;
  char *dst = luaL_buffinitsize(L, &lb, (size_t)nbytes);
  lg_ctx *ctx = lgl_ctx(L);
  if (nbytes && lg_buffer_read(b->buf, 0, dst, nbytes)) return lgl_fail(L, ctx);
  luaL_pushresultsize(&lb, (size_t)nbytes);
  return 1;
}

static int buf_len(lua_State *L) {
  lua_pushinteger(L, check_buf(L, 1)->n);
  return 1;
}

static int buf_index(lua_State *L) {
  buf_box *b = check_buf(L, 1);
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "dtype") == 0) lgl_push_dtype(L, b->dtype);
  else if (strcmp(k, "device") == 0) lua_pushstring(L, lg_device_name(lg_buffer_device(b->buf)));
  else if (strcmp(k, "nbytes") == 0) lua_pushinteger(L, lg_buffer_size(b->buf));
  else if (strcmp(k, "id") == 0) lua_pushlightuserdata(L, b->buf); /* the same for every handle of a buffer */
  else lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

static int buf_tostring(lua_State *L) {
  buf_box *b = check_buf(L, 1);
  char dt[64];
  lg_dtype_name(b->dtype, dt, sizeof dt);
  lua_pushfstring(L, "Buffer(%s, %s, %I)", lg_device_name(lg_buffer_device(b->buf)), dt, (lua_Integer)b->n);
  return 1;
}

/* core.buffer_node(buf) -> a BUFFER UOp of a new id that holds buf */
static int l_buffer_node(lua_State *L) {
  buf_box *b = check_buf(L, 1);
  lg_ctx *ctx = lgl_ctx(L);
  lg_uop *u;
  if (lg_buffer_node(ctx, b->buf, b->dtype, &u)) return lgl_fail(L, ctx);
  lgl_push_uop_owned(L, u);
  return 1;
}

/* core.node_buffer(u) -> the Buffer a BUFFER node holds */
static int l_node_buffer(lua_State *L) {
  lg_uop *u = lgl_check_uop(L, 1);
  lg_buffer *buf = lg_uop_buffer(u);
  if (!buf) return luaL_argerror(L, 1, "the node holds no buffer");
  buf_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  *b = (buf_box){.buf = lg_buffer_retain(buf), .dtype = lg_uop_dtype(u), .n = lg_uop_arg(u)->ints[0]};
  luaL_setmetatable(L, LGL_BUFFER);
  return 1;
}

/* core.render_c(sink, name) -> the kernel's C source */
static int l_render_c(lua_State *L) {
  lg_uop *sink = lgl_check_uop(L, 1);
  const char *name = luaL_checkstring(L, 2);
  lg_ctx *ctx = lgl_ctx(L);
  char *src;
  if (lg_render_c(ctx, sink, name, &src)) return lgl_fail(L, ctx);
  lua_pushstring(L, src);
  lg_free(src);
  return 1;
}

/* the renderer of each device kind */
static const struct {
  const char *kind;
  lg_status (*render)(lg_ctx *ctx, lg_uop *sink, const char *name, char **src);
} renderers[] = {{"CPU", lg_render_c}, {"LLVM", lg_render_llvm}};

/* core.render(device, sink, name) -> the kernel's source for the device ("CPU", "llvm", "LLVM:0") */
static int l_render(lua_State *L) {
  const char *device = luaL_checkstring(L, 1);
  lg_uop *sink = lgl_check_uop(L, 2);
  const char *name = luaL_checkstring(L, 3);
  size_t klen = strcspn(device, ":");
  for (size_t i = 0; i < sizeof renderers / sizeof renderers[0]; i++) {
    if (strlen(renderers[i].kind) != klen || strncasecmp(renderers[i].kind, device, klen) != 0) continue;
    lg_ctx *ctx = lgl_ctx(L);
    char *src;
    if (renderers[i].render(ctx, sink, name, &src)) return lgl_fail(L, ctx);
    lua_pushstring(L, src);
    lg_free(src);
    return 1;
  }
  return luaL_error(L, "render: no renderer for device '%s' (devices: CPU, LLVM)", device);
}

static int l_program(lua_State *L) {
  lg_device *dev = check_device(L, 1);
  const char *src = luaL_checkstring(L, 2), *entry = luaL_checkstring(L, 3);
  prog_box *p = lua_newuserdatauv(L, sizeof *p, 0);
  p->prog = NULL;
  luaL_setmetatable(L, LGL_PROGRAM);
  lg_ctx *ctx = lgl_ctx(L);
  if (lg_program_compile(ctx, dev, src, entry, &p->prog)) return lgl_fail(L, ctx);
  return 1;
}

/* core.programs(device, {source...}, {entry...}) -> {Program or error message...}: the
 * compiles run at once (CPU: up to THREADS compilers) */
static int l_programs(lua_State *L) {
  lg_device *dev = check_device(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
  if ((lua_Integer)lua_rawlen(L, 3) != n)
    return luaL_error(L, "programs: %I sources but %I entries", n, (lua_Integer)lua_rawlen(L, 3));
  luaL_argcheck(L, n <= INT32_MAX / 4, 2, "too many sources");
  size_t m = n > 0 ? (size_t)n : 1;
  const char **strs = lua_newuserdatauv(L, 2 * m * sizeof *strs, 0);
  lg_program **progs = lua_newuserdatauv(L, m * sizeof *progs, 0);
  char **errors = lua_newuserdatauv(L, m * sizeof *errors, 0);
  for (lua_Integer i = 0; i < n; i++) {
    lua_rawgeti(L, 2, i + 1);
    lua_rawgeti(L, 3, i + 1);
    if (!lua_isstring(L, -2) || !lua_isstring(L, -1))
      return luaL_error(L, "programs: source and entry %I must be strings", i + 1);
    strs[i] = lua_tostring(L, -2), strs[m + i] = lua_tostring(L, -1); /* kept alive by the tables */
    lua_pop(L, 2);
  }
  lua_createtable(L, (int)n, 0); /* the boxes first: nothing can fail once the programs exist */
  for (lua_Integer i = 0; i < n; i++) {
    prog_box *p = lua_newuserdatauv(L, sizeof *p, 0);
    p->prog = NULL;
    luaL_setmetatable(L, LGL_PROGRAM);
    lua_rawseti(L, -2, i + 1);
  }
  lg_ctx *ctx = lgl_ctx(L);
  if (lg_program_compile_many(ctx, dev, (int32_t)n, strs, strs + m, progs, errors)) return lgl_fail(L, ctx);
  for (lua_Integer i = 0; i < n; i++) {
    lua_rawgeti(L, -1, i + 1);
    ((prog_box *)lua_touserdata(L, -1))->prog = progs[i];
    lua_pop(L, 1);
  }
  for (lua_Integer i = 0; i < n; i++) { /* the messages, as strings in place of the empty boxes */
    if (progs[i]) continue;
    lua_pushstring(L, errors[i]);
    lg_free(errors[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* core.cache_path(device, folder, text) -> <cache root>/<folder>/<hash of text and device> */
static int l_cache_path(lua_State *L) {
  lg_device *dev = check_device(L, 1);
  const char *folder = luaL_checkstring(L, 2), *text = luaL_checkstring(L, 3);
  lg_ctx *ctx = lgl_ctx(L);
  char *path;
  if (lg_device_cache_path(ctx, dev, folder, text, &path)) return lgl_fail(L, ctx);
  lua_pushstring(L, path);
  lg_free(path);
  return 1;
}

static int prog_gc(lua_State *L) {
  prog_box *p = luaL_checkudata(L, 1, LGL_PROGRAM);
  lg_program_release(p->prog);
  p->prog = NULL;
  return 0;
}

/* prog:launch({buf...} [, {int...} [, ncores [, sample]]]): sample > 0 runs core_ids [0, sample) only (CPU) */
static int prog_launch(lua_State *L) {
  prog_box *p = luaL_checkudata(L, 1, LGL_PROGRAM);
  luaL_argcheck(L, p->prog != NULL, 1, "the program is released");
  luaL_checktype(L, 2, LUA_TTABLE);
  int32_t nbufs = (int32_t)lua_rawlen(L, 2), nints = lua_isnoneornil(L, 3) ? 0 : (int32_t)luaL_len(L, 3);
  lg_launch_dims dims = {.global = {(int32_t)luaL_optinteger(L, 4, 1), 1, 1}, .local = {1, 1, 1},
                         .sample = (int32_t)luaL_optinteger(L, 5, 0)};
  lg_buffer *few_bufs[16]; /* most kernels: no garbage for the collector */
  int64_t few_ints[8];
  lg_buffer **bufs = nbufs <= 16 ? few_bufs : lua_newuserdatauv(L, sizeof *bufs * (size_t)nbufs, 0);
  int64_t *ints = nints <= 8 ? few_ints : lua_newuserdatauv(L, sizeof *ints * (size_t)nints, 0);
  for (int32_t i = 0; i < nbufs; i++) {
    lua_rawgeti(L, 2, i + 1);
    buf_box *b = luaL_testudata(L, -1, LGL_BUFFER);
    if (!b || !b->buf) return luaL_error(L, "launch: buffer %d is not a live Buffer", (int)i + 1);
    bufs[i] = b->buf;
    lua_pop(L, 1);
  }
  for (int32_t i = 0; i < nints; i++) {
    lua_geti(L, 3, i + 1);
    int ok;
    ints[i] = lua_tointegerx(L, -1, &ok);
    if (!ok) return luaL_error(L, "launch: int argument %d is not an integer", (int)i + 1);
    lua_pop(L, 1);
  }
  lg_ctx *ctx = lgl_ctx(L);
  if (lg_program_launch(ctx, p->prog, bufs, nbufs, ints, nints, &dims)) return lgl_fail(L, ctx);
  return 0;
}

static int l_device_stats(lua_State *L) {
  lg_device_stats s;
  lg_device_stats_get(check_device(L, 1), &s);
  lua_createtable(L, 0, 7);
  const struct {
    const char *name;
    int64_t v;
  } fields[] = {{"compiles", s.compiles},     {"disk_hits", s.disk_hits}, {"memory_hits", s.memory_hits},
                {"compile_ns", s.compile_ns}, {"launches", s.launches},   {"buffers", s.buffers},
                {"buffer_bytes", s.buffer_bytes}};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    lua_pushinteger(L, fields[i].v);
    lua_setfield(L, -2, fields[i].name);
  }
  return 1;
}

/* buf:release(): drop this handle's reference now (nodes holding the buffer keep theirs) */
static const luaL_Reg buf_methods[] = {{"write", buf_write},           {"read", buf_read},
                                       {"write_bytes", buf_write_bytes}, {"read_bytes", buf_read_bytes},
                                       {"release", buf_gc},             {NULL, NULL}};
static const luaL_Reg buf_meta[] = {{"__gc", buf_gc}, {"__close", buf_gc}, {"__len", buf_len},
                                    {"__tostring", buf_tostring}, {NULL, NULL}};
static const luaL_Reg prog_meta[] = {{"__gc", prog_gc}, {"__close", prog_gc}, {NULL, NULL}};
static const luaL_Reg prog_methods[] = {{"launch", prog_launch}, {NULL, NULL}};
static const luaL_Reg device_funcs[] = {{"buffer", l_buffer},          {"buffer_node", l_buffer_node},
                                        {"node_buffer", l_node_buffer}, {"program", l_program},
                                        {"render_c", l_render_c},         {"render", l_render},
                                        {"device_stats", l_device_stats}, {"programs", l_programs},
                                        {"cache_path", l_cache_path},     {NULL, NULL}};

void lgl_open_device(lua_State *L) {
  luaL_newmetatable(L, LGL_BUFFER);
  luaL_setfuncs(L, buf_meta, 0);
  luaL_newlib(L, buf_methods);
  lua_pushcclosure(L, buf_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newmetatable(L, LGL_PROGRAM);
  luaL_setfuncs(L, prog_meta, 0);
  luaL_newlib(L, prog_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_setfuncs(L, device_funcs, 0);
}
