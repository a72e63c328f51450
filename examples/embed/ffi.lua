-- ffi.lua: luagrad from LuaJIT through its FFI, over the plain C API (luagrad.h).
-- Run: luajit examples/embed/ffi.lua build/include/luagrad.h build/lib/libluagrad.so
-- lg_open gives the engine a Lua 5.4 state of its own, so every rule file works from LuaJIT.
local ffi = require "ffi"
local header, lib = arg[1], arg[2]

local text = assert(io.open(header)):read("a"):gsub("\n#[^\n]*", "\n") -- cdef takes no directives
ffi.cdef(text)
-- LuaJIT exports the Lua 5.1 API under the same names as Lua 5.4's: load the library with
-- RTLD_DEEPBIND first, so it and its liblua5.4 bind to their own symbols, not LuaJIT's.
ffi.cdef [[void *dlopen(const char *file, int mode);]]
local RTLD_NOW, RTLD_DEEPBIND = 0x2, 0x8
assert(ffi.C.dlopen(lib, RTLD_NOW + RTLD_DEEPBIND) ~= nil, "dlopen " .. lib .. " failed")
local C = ffi.load(lib)

local function check(ctx, st)
  if st ~= 0 then error(ffi.string(C.lg_ctx_error(ctx))) end
end

local pctx = ffi.new("lg_ctx *[1]")
if C.lg_open(pctx) ~= 0 then error("lg_open failed") end
local ctx = pctx[0]
local int32 = C.lg_dtype_lookup("int32")
local out = ffi.new("lg_uop *[1]")

local function const(v)
  check(ctx, C.lg_uop_const_int(ctx, int32, v, out))
  return ffi.gc(out[0], C.lg_uop_release)
end
local function node(op, a, b)
  local src = ffi.new("lg_uop *[2]", a, b)
  check(ctx, C.lg_uop_new(ctx, C.lg_op_lookup(op), int32, src, 2, nil, out))
  return ffi.gc(out[0], C.lg_uop_release)
end

-- (x*4 + 3) // 4 for x in [0, 9]
local bounds = ffi.new("int64_t[2]", 0, 9)
local arg = ffi.new("lg_arg", { kind = C.LG_ARG_STR_INTS, n = 2, s = "x", ints = bounds })
check(ctx, C.lg_uop_new(ctx, C.lg_op_lookup("DEFINE_VAR"), int32, nil, 0, arg, out))
local x = ffi.gc(out[0], C.lg_uop_release)
local e = node("IDIV", node("ADD", node("MUL", x, const(4)), const(3)), const(4))

local rs = ffi.new("lg_ruleset *[1]")
check(ctx, C.lg_pass(ctx, "symbolic", rs))
local opts = ffi.new("lg_rewrite_opts")
check(ctx, C.lg_graph_rewrite(ctx, e, rs[0], opts, out))
local simple = ffi.gc(out[0], C.lg_uop_release)
local text_out = ffi.new("char *[1]")
check(ctx, C.lg_uop_format(ctx, simple, text_out))
io.write(ffi.string(text_out[0]))
C.lg_free(text_out[0])
print(("simplified to x: %s, %d rewrites"):format(tostring(simple == x), tonumber(opts.rewrites)))

-- release every node before closing the context that owns them
C.lg_ruleset_release(rs[0])
x, e, simple = nil, nil, nil
collectgarbage()
collectgarbage()
C.lg_close(ctx)
