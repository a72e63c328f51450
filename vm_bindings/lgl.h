/* lgl.h: shared pieces of the Lua 5.4 binding (the `lgl_` prefix marks binding internals).
 * The engine context of a Lua state lives in its registry; UOps are full userdata, one
 * canonical userdata per node (so `==` and table keys work by identity). */
#ifndef LGL_H
#define LGL_H
#include <lauxlib.h>
#include <lua.h>

#include "luagrad.h"
#include "luagrad_enums.h"

#define LGL_UOP "luagrad.UOp"
#define LGL_DTYPE "luagrad.DType"
#define LGL_RULESET "luagrad.RuleSet"

typedef struct {
  lg_ruleset *rs; /* NULL once released */
} lgl_ruleset_box;

/* The engine context of this Lua state (created by luaopen_luagrad_core). */
lg_ctx *lgl_ctx(lua_State *L);
/* Raise the context's error message as a Lua error. */
int lgl_fail(lua_State *L, lg_ctx *ctx);

/* Push the userdata of u (retaining u for it). */
void lgl_push_uop(lua_State *L, lg_uop *u);
/* Push the userdata of u and drop the caller's reference (for lg_uop_new results). */
void lgl_push_uop_owned(lua_State *L, lg_uop *u);
lg_uop *lgl_check_uop(lua_State *L, int idx);
lg_uop *lgl_to_uop(lua_State *L, int idx); /* NULL when the value is not a UOp */

void lgl_push_dtype(lua_State *L, lg_dtype dt);
/* A DType object or a dtype name ("float32"). */
lg_dtype lgl_check_dtype(lua_State *L, int idx);
int lgl_is_dtype(lua_State *L, int idx);

/* Read a Lua value as a UOp arg: nil, integer, float, boolean, string, a list of integers, or a
 * list whose first item is a string followed by integers. Pushes one scratch value that holds
 * the arg's storage: keep it on the stack while the arg is used. */
void lgl_check_arg(lua_State *L, int idx, lg_arg *out);
/* Push a UOp's arg as a Lua value (CONSTs by dtype: boolean, integer or float). */
void lgl_push_arg(lua_State *L, const lg_uop *u);

/* Registration of the binding's parts into the module table at the top of the stack. */
void lgl_open_dtype(lua_State *L);
void lgl_open_uop(lua_State *L);
void lgl_open_pattern(lua_State *L);
void lgl_open_rewrite(lua_State *L);
void lgl_open_device(lua_State *L);
void lgl_open_io(lua_State *L);
void lgl_open_opt(lua_State *L);

/* core.compile(list [, name]) -> RuleSet (lua_pattern.c) */
int lgl_compile(lua_State *L);
lg_ruleset *lgl_check_ruleset(lua_State *L, int idx);

/* The rule host for Lua states: callbacks run on the thread that called graph_rewrite, else on
 * the state's main thread. */
void lgl_install_host(lua_State *L, lg_ctx *ctx);
/* The main lua_State of the Lua rule host on ctx, NULL when it has none. */
lua_State *lgl_host_state(const lg_ctx *ctx);

int luaopen_luagrad_core(lua_State *L);

#endif
