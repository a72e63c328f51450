-- symbolic.lua: algebraic simplification and constant folding. This is the pass that keeps
-- generated index math small. Rules are grouped by root op; integer rules rely on the bounds
-- (vmin/vmax) every integer node carries. IDIV and MOD truncate toward zero, as in C.
-- Three results are computed in C (P.native): constant folding, values known from bounds, and
-- the division of a sum by a constant (core/symbolic.c), which runs on most index expressions.
local P = require "luagrad.pattern"
local core = require "luagrad.core"

local INTS = { "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64" }
local INTBOOL = { "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64" }
local ALU = { "EXP2", "LOG2", "SIN", "SQRT", "RECIPROCAL", "NEG", "TRUNC", "CAST", "BITCAST", "ADD", "SUB",
  "MUL", "FDIV", "IDIV", "MOD", "MAX", "POW", "CMPLT", "CMPNE", "CMPEQ", "AND", "OR", "XOR", "SHL", "SHR",
  "WHERE", "MULACC" }

local x, y, z = P.var("x"), P.var("y"), P.var("z")
local xi, yi = P.var("x", INTS), P.var("y", INTS)
local xb = P.var("x", INTBOOL)
local c, c1, c2 = P.cvar("c"), P.cvar("c1"), P.cvar("c2")
local ci = P.cvar("c", INTS)
local cond = P.var("cond")
-- any node but a constant: keeps "constants outward" rules from swapping two constants forever
local nonconst = {}
for _, op in ipairs(ALU) do nonconst[#nonconst + 1] = op end
for _, op in ipairs { "DEFINE_VAR", "RANGE", "SPECIAL", "LOAD", "INDEX", "GEP", "BIND" } do
  nonconst[#nonconst + 1] = op
end
local yn = P.op(nonconst, { name = "y", dtype = INTS })

-- ---- helpers ----------------------------------------------------------------------------

-- the value range of each integer dtype whose range fits a Lua integer (not uint64)
local LO, HI = {}, {}
for _, name in ipairs(INTS) do
  local bits, signed = core.dtypes[name].itemsize * 8, name:sub(1, 1) == "i"
  if bits < 64 or signed then
    LO[core.dtypes[name]] = signed and -(1 << (bits - 1)) or 0 -- wraps to math.mininteger for int64
    HI[core.dtypes[name]] = signed and (1 << (bits - 1)) - 1 or (1 << bits) - 1
  end
end
-- bounds that prove a node never wrapped: known and narrower than its dtype's whole range
local function exact(u)
  local lo, hi = u.vmin, u.vmax
  local dt = u.dtype
  return lo ~= nil and HI[dt] ~= nil and (lo > LO[dt] or hi < HI[dt])
end

local function fits(v, dt) return HI[dt] ~= nil and v >= LO[dt] and v <= HI[dt] end

-- (x // a) // b -> x // (a*b) and (x % a) % b -> x % b when b divides a (a, b > 0)
local function nested_div(m, _, node)
  local a, b = m.c1.arg, m.c2.arg
  if a <= 0 or b <= 0 or not fits(a * b, node.dtype) or a * b // b ~= a then return nil end
  return m.x // (a * b)
end
local function nested_mod(m)
  local a, b = m.c1.arg, m.c2.arg
  if a > 0 and b > 0 and a % b == 0 then return m.x % b end
end
-- a REDUCE of the op's identity (an upcast copy that a gate masked out entirely) is that value,
-- and so is a MAX of a constant over ranges that are not empty
local function reduce_identity(_, _, node)
  local src = node.src
  local c = src[1]
  if c.op ~= "CONST" then return nil end
  local v, op = c.arg, node.arg
  if (op == "ADD" and v == 0) or (op == "MUL" and v == 1) then return c end
  if op ~= "MAX" then return nil end
  for i = 2, #src do
    local n = src[i].src[1]
    if n.op ~= "CONST" or n.arg < 1 then return nil end
  end
  return c
end

-- (x // a) % b -> (x % (a*b)) // a for x >= 0 (a, b > 0): the remainder may then fold by divmod
local function div_mod(m, _, node)
  local a, b = m.c1.arg, m.c2.arg
  if m.x.vmin < 0 or a <= 0 or b <= 0 or not fits(a * b, node.dtype) or a * b // b ~= a then return nil end
  return (m.x % (a * b)) // a
end

-- comparisons with a constant: move the arithmetic to the constant side when nothing wraps
local function lt_add(m, _, node)
  local s, k = m.c1.arg, m.c2.arg
  if exact(node.src[1]) and fits(k - s, m.x.dtype) then return m.x:lt(k - s) end
end
local function gt_add(m, _, node) -- k < x + s <=> k - s < x
  local s, k = m.c1.arg, m.c2.arg
  if exact(node.src[2]) and fits(k - s, m.x.dtype) then return core.const(m.x.dtype, k - s):lt(m.x) end
end
local function lt_mul(m, _, node)
  local a, k = m.c1.arg, m.c2.arg
  if a > 0 and exact(node.src[1]) then return m.x:lt(-((-k) // a)) end -- x*a < k <=> x < ceil(k/a)
end
local function lt_div(m)
  local a, k = m.c1.arg, m.c2.arg
  if a > 0 and k > 0 and m.x.vmin and m.x.vmin >= 0 and fits(k * a, m.x.dtype) and k * a // a == k then
    return m.x:lt(k * a)
  end
end

local function max_bounds(m)
  local a, b = m.x, m.y
  if a.vmin and b.vmin then
    if a.vmin >= b.vmax then return a end
    if b.vmin >= a.vmax then return b end
  end
end

-- cast(cast(x, mid), x.dtype) -> x when mid holds every value x can take
local function lossless(u, mid)
  local from = u.dtype
  if from.kind == "bool" then return true end
  if u.vmin and mid.kind ~= "float" then return fits(u.vmin, mid) and fits(u.vmax, mid) end
  if from.kind == "float" and mid.kind == "float" then
    return mid.itemsize > from.itemsize and not (from.name == "bfloat16" and mid.name == "float16")
  end
  local mant = ({ float16 = 11, bfloat16 = 8, float32 = 24, float64 = 53 })[mid.name]
  return u.vmin ~= nil and mant ~= nil and math.abs(u.vmin) < 2 ^ mant and math.abs(u.vmax) < 2 ^ mant
end
local function cast_cast(m, _, node)
  if m.x.dtype == node.dtype and lossless(m.x, node.src[1].dtype) then return m.x end
end
local function cast_same(m, _, node)
  if m.x.dtype == node.dtype then return m.x end
end

local rules = {
  -- constants and bounds: whole subexpressions that are known values
  { P.op(ALU, { each = P.op("CONST") }), P.native("fold"), name = "constant fold" },
  { P.op(ALU, { dtype = INTBOOL }), P.native("bounds"), name = "known by bounds" },

  -- ADD
  { x + 0, x }, -- for floats too: -0.0 + 0 is +0.0, a difference no user of this pass needs
  { (xi + c1) + c2, xi + (c1 + c2), name = "add chain" },
  { (xi + c) + yn, (xi + yn) + c, name = "constant outward" },
  { xi * c1 + xi * c2, xi * (c1 + c2), name = "like terms" },
  { xi + xi * c, xi * (c + 1), name = "like terms" },
  { (xi - yi) + yi, xi },
  { x + (-y), x - y },
  -- SUB
  { x - 0, x },
  { xb - xb, 0 },
  { (xi + yi) - yi, xi },
  { xi - (xi - yi), yi },
  { x - (-y), x + y },
  { (xi + c1) - c2, xi + (c1 - c2), name = "add chain" },
  { (xi - c1) + c2, xi + (c2 - c1), name = "add chain" },
  { xi * c1 - xi * c2, xi * (c1 - c2), name = "like terms" },
  { xi * c - xi, xi * (c - 1), name = "like terms" },
  { xi - xi * c, xi * (1 - c), name = "like terms" },
  -- MUL
  { x * 1, x },
  { xi * 0, 0 },
  { (xi * c1) * c2, xi * (c1 * c2), name = "mul chain" },
  { (xi * c) * yn, (xi * yn) * c, name = "constant outward" },
  { (xi + c1) * c2, xi * c2 + c1 * c2, name = "distribute constant" },
  -- NEG
  { -(-x), x },
  -- FDIV
  { x / 1, x },
  -- IDIV, MOD
  { x // 1, x },
  { xi % 1, 0 },
  { (xi // c1) // c2, nested_div, name = "nested division" },
  { (xi % c1) % c2, nested_mod, name = "nested modulo" },
  { (xi // c1) % c2, div_mod, name = "modulo of a quotient" },
  { (xi // c1) * c1 + xi % c1, xi, name = "quotient and remainder" }, -- truncating: any sign
  { (yi + (xi // c1) * c1) + xi % c1, yi + xi, name = "quotient and remainder in a sum" },
  { (yi + xi % c1) + (xi // c1) * c1, yi + xi, name = "quotient and remainder in a sum" },
  { P.op({ "IDIV", "MOD" }, { src = { xi, ci } }), P.native("divmod"), name = "divmod" },
  -- MAX
  { x:max(x), x },
  { xi:max(yi), max_bounds, name = "max by bounds" },
  -- bitwise and boolean
  { xb & xb, xb },
  { xb | xb, xb },
  { xb ~ xb, 0 },
  { xb & 0, 0 },
  { P.var("x", "bool") & true, P.var("x", "bool"), name = "and true" },
  { P.op("REDUCE"), reduce_identity, name = "reduce of a constant" },
  { P.op("INDEX", { src = { P.var("buf"), P.var("idx"), P.const(true, "bool") } }), function(m, _, node)
    return core.uop("INDEX", node.dtype, { m.buf, m.idx })
  end, name = "gate always true" },
  { xb | 0, xb },
  { xb ~ 0, xb },
  { (xb & c1) & c2, xb & (c1 & c2), name = "and chain" },
  { (xb | c1) | c2, xb | (c1 | c2), name = "or chain" },
  { (xb ~ c1) ~ c2, xb ~ (c1 ~ c2), name = "xor chain" },
  -- comparisons
  { xi:lt(xi), false },
  { xi:ne(xi), false },
  { xi:eq(xi), true },
  { (xi + c1):lt(c2), lt_add, name = "lt of sum" },
  { c2:lt(xi + c1), gt_add, name = "lt of sum" },
  { (xi * c1):lt(c2), lt_mul, name = "lt of product" },
  { (xi // c1):lt(c2), lt_div, name = "lt of quotient" },
  -- WHERE
  { cond:where(x, x), x },
  { P.const(true):where(x, y), x },
  { P.const(false):where(x, y), y },
  { cond:where(P.const(true, "bool"), P.const(false, "bool")), cond }, -- bool only: 1 and 0 would match too
  { cond:where(cond:where(x, y), z), cond:where(x, z) },
  { cond:where(x, cond:where(y, z)), cond:where(x, z) },
  -- a load gated by cond already gives 0 where cond is false
  { cond:where(P.op("LOAD", { src = { P.op("INDEX", { src = { P.var(), P.var(), cond } }) }, name = "ld" }), 0),
    P.var("ld") },
  -- CAST
  { P.op("CAST", { src = { x } }), cast_same, name = "cast to own dtype" },
  { P.op("CAST", { src = { P.op("CAST", { src = { x } }) } }), cast_cast, name = "lossless cast pair" },
}

return rules
