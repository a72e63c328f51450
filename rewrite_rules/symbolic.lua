-- symbolic.lua: algebraic simplification and constant folding. This is the pass that keeps
-- generated index math small. Rules are grouped by root op; integer rules rely on the bounds
-- (vmin/vmax) every integer node carries. IDIV and MOD truncate toward zero, as in C.
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

local function imin(dt) return ({ int8 = -128, int16 = -32768, int32 = -2147483648, int64 = math.mininteger })[dt.name] or 0 end
local function imax(dt)
  return ({ int8 = 127, int16 = 32767, int32 = 2147483647, int64 = math.maxinteger, uint8 = 255, uint16 = 65535,
    uint32 = 4294967295 })[dt.name]
end

-- bounds that prove a node never wrapped: known and narrower than its dtype's whole range
local function exact(u)
  local lo, hi = u.vmin, u.vmax
  return lo ~= nil and imax(u.dtype) ~= nil and (lo > imin(u.dtype) or hi < imax(u.dtype))
end

local function fits(v, dt) return v >= imin(dt) and imax(dt) ~= nil and v <= imax(dt) end

-- A sum of terms: {terms = {node, ...}, coef = {[node] = k}, k = constant}, looking through ADD,
-- SUB, NEG and multiplication by constants. nil when a node on the way may have wrapped.
local function linear(u)
  local s = { terms = {}, coef = {}, k = 0 }
  local function walk(v, k, depth)
    local op = v.op
    if op == "CONST" then s.k = s.k + k * v.arg return true end
    if depth < 16 and (op == "ADD" or op == "SUB" or op == "NEG" or op == "MUL") then
      if not exact(v) then return false end
      local a, b = v.src[1], v.src[2]
      if op == "ADD" then return walk(a, k, depth + 1) and walk(b, k, depth + 1) end
      if op == "SUB" then return walk(a, k, depth + 1) and walk(b, -k, depth + 1) end
      if op == "NEG" then return walk(a, -k, depth + 1) end
      if b.op == "CONST" then return walk(a, k * b.arg, depth + 1) end
      if a.op == "CONST" then return walk(b, k * a.arg, depth + 1) end
    end
    if not s.coef[v] then s.terms[#s.terms + 1] = v end
    s.coef[v] = (s.coef[v] or 0) + k
    return true
  end
  return walk(u, 1, 0) and s or nil
end

-- Build sum(coef * term) + k in dtype dt: positive terms first, so negatives become SUBs.
local function build(terms, coef, k, dt)
  local out
  local function add(v, neg)
    if not out then out = neg and -v or v
    elseif neg then out = out - v
    else out = out + v end
  end
  for pass = 1, 2 do
    for _, t in ipairs(terms) do
      local a = coef[t]
      if a ~= 0 and ((a > 0) == (pass == 1)) then
        local m = math.abs(a)
        add(m == 1 and t or t * m, a < 0)
      end
    end
  end
  if k ~= 0 or not out then
    if out and k < 0 then out = out - (-k) else out = out and out + k or core.const(dt, k) end
  end
  return out
end

local function gcd(a, b)
  a, b = math.abs(a), math.abs(b)
  while b ~= 0 do a, b = b, a % b end
  return a
end

-- x // c and x % c for a constant c > 0: terms whose coefficient c divides move out of the
-- division; what stays (r) must be >= 0 for truncation to split that way (x >= 0 too).
local function divmod(m, _, node)
  local n, d, dt = node.src[1], node.src[2].arg, node.dtype
  if d <= 0 or not exact(n) then return nil end
  local s = linear(n)
  if not s then return nil end
  local qc, rc = {}, {}
  for _, t in ipairs(s.terms) do
    local a = s.coef[t]
    qc[t], rc[t] = (a % d == 0) and a // d or 0, (a % d == 0) and 0 or a
  end
  local kq, kr = s.k // d, s.k % d
  local r = build(s.terms, rc, kr, dt)
  local result
  if r.op == "CONST" and r.arg == 0 then -- exact division: valid for either sign
    result = node.op == "IDIV" and build(s.terms, qc, kq, dt) or r
  elseif n.vmin >= 0 and r.vmin and r.vmin >= 0 then
    if node.op == "IDIV" then
      local q = build(s.terms, qc, kq, dt)
      if r.vmax < d then result = q
      elseif q.op == "CONST" and q.arg == 0 then result = nil
      else result = q + r // d end
    else
      result = r.vmax < d and r or r % d
    end
  end
  if not result then -- common factor of every coefficient, the constant and the divisor
    local g = d
    for _, t in ipairs(s.terms) do g = gcd(g, s.coef[t]) end
    g = gcd(g, s.k)
    if g <= 1 then return nil end
    local sc = {}
    for _, t in ipairs(s.terms) do sc[t] = s.coef[t] // g end
    local ng = build(s.terms, sc, s.k // g, dt)
    result = node.op == "IDIV" and ng // (d // g) or (ng % (d // g)) * g
  end
  if result ~= node and result:size() <= node:size() then return result end
end

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

-- comparisons with a constant: move the arithmetic to the constant side when nothing wraps
local function lt_add(m, _, node)
  local s, k = m.c1.arg, m.c2.arg
  if exact(node.src[1]) and fits(k - s, m.x.dtype) then return m.x:lt(k - s) end
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
  { x + 0, x },
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
  { P.op({ "IDIV", "MOD" }, { src = { xi, ci } }), divmod, name = "divmod" },
  -- MAX
  { x:max(x), x },
  { xi:max(yi), max_bounds, name = "max by bounds" },
  -- bitwise and boolean
  { xb & xb, xb },
  { xb | xb, xb },
  { xb ~ xb, 0 },
  { xb & 0, 0 },
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
  { (xi * c1):lt(c2), lt_mul, name = "lt of product" },
  { (xi // c1):lt(c2), lt_div, name = "lt of quotient" },
  -- WHERE
  { cond:where(x, x), x },
  { P.const(true):where(x, y), x },
  { P.const(false):where(x, y), y },
  { cond:where(true, false), cond },
  { cond:where(cond:where(x, y), z), cond:where(x, z) },
  { cond:where(x, cond:where(y, z)), cond:where(x, z) },
  -- CAST
  { P.op("CAST", { src = { x } }), cast_same, name = "cast to own dtype" },
  { P.op("CAST", { src = { P.op("CAST", { src = { x } }) } }), cast_cast, name = "lossless cast pair" },
}

return rules
