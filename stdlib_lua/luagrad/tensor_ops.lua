-- Elementwise math of luagrad.tensor, with numpy broadcasting and PyTorch's dtype promotion
-- (numbers are weak scalars, see luagrad.tensor). Everything is composed from the primitive ops
-- of core/ops.def; the scheduler fuses the compositions back into one kernel.
local core = require "luagrad.core"
local Tensor = require "luagrad.tensor"

local dt = core.dtypes
local wrap, shape_str, is_tensor, raise = Tensor.wrap, Tensor.shape_str, Tensor.is_tensor, Tensor.raise

local function scalar_dtype(v)
  if type(v) == "boolean" then return dt.bool end
  if math.type(v) == "float" then return Tensor.default_float end
  return Tensor.default_int
end

-- the dtype operands meet at: tensors promote; a number takes the tensor's dtype unless a float
-- number meets an integer or bool tensor (then the default float), or an integer number a bool
-- tensor (then the default int)
local function result_dtype(a, b)
  local ta, tb = is_tensor(a), is_tensor(b)
  if ta and tb then return core.promote(a.dtype, b.dtype) end
  if not ta and not tb then return core.promote(scalar_dtype(a), scalar_dtype(b)) end
  local t, n = ta and a or b, ta and b or a
  local k = t.dtype.kind
  if type(n) == "number" and math.type(n) == "float" and k ~= "float" then return Tensor.default_float end
  if type(n) == "number" and k == "bool" then return Tensor.default_int end
  return t.dtype
end
Tensor.result_dtype = result_dtype

local function const_tensor(v, dtype) return wrap(core.uop("RESHAPE", dtype, { core.const(dtype, v) }, {})) end

local function as_tensor(what, x, dtype)
  if is_tensor(x) then return x.dtype == dtype and x or x:cast(dtype) end
  if type(x) ~= "number" and type(x) ~= "boolean" then
    raise("%s: expected a Tensor, a number or a boolean, got a %s", what, type(x))
  end
  return const_tensor(x, dtype)
end

-- numpy broadcasting of two shapes; the error names both
local function broadcast_shape(what, sa, sb)
  local n, out = math.max(#sa, #sb), {}
  for i = 1, n do
    local a, b = sa[#sa - n + i] or 1, sb[#sb - n + i] or 1
    if a ~= b and a ~= 1 and b ~= 1 then
      raise("%s: shapes %s and %s do not broadcast (axis %d: %d vs %d)", what, shape_str(sa), shape_str(sb), i, a, b)
    end
    out[i] = a == 1 and b or a
  end
  return out
end
Tensor.broadcast_shape = broadcast_shape

local function to_shape(t, shape)
  local ts = t.shape
  if #ts == #shape then
    local same = true
    for i = 1, #shape do same = same and ts[i] == shape[i] end
    if same then return t end
  end
  return t:expand(shape)
end

-- a number as a tensor of `dtype` and `shape`: a CONST viewed through a reshape and an expand
local function const_shaped(v, dtype, shape)
  local ones, bcast = {}, false
  for i, d in ipairs(shape) do
    ones[i], bcast = 1, bcast or d ~= 1
  end
  local u = core.uop("RESHAPE", dtype, { core.const(dtype, v) }, ones)
  return wrap(bcast and core.uop("EXPAND", dtype, { u }, shape) or u)
end

-- operands as tensors of `dtype` (the first of a WHERE as bool), broadcast to one shape
local function operands(what, dtype, first_bool, ...)
  local args, shape = { ... }, nil
  for i = 1, select("#", ...) do
    local a, want = args[i], (i == 1 and first_bool) and dt.bool or dtype
    if is_tensor(a) then
      if a.dtype ~= want then args[i] = a:cast(want) end
      shape = shape and broadcast_shape(what, shape, a.shape) or a.shape
    elseif type(a) ~= "number" and type(a) ~= "boolean" then
      raise("%s: expected a Tensor, a number or a boolean, got a %s", what, type(a))
    end
  end
  shape = shape or {}
  for i, a in ipairs(args) do
    args[i] = is_tensor(a) and to_shape(a, shape) or const_shaped(a, (i == 1 and first_bool) and dt.bool or dtype, shape)
  end
  return args
end

-- an elementwise op over operands (tensors or numbers), cast to `dtype` and broadcast
local function ew(what, op, out_dtype, dtype, ...)
  local args = operands(what, dtype, op == "WHERE", ...)
  local srcs = {}
  for i, a in ipairs(args) do srcs[i] = a.uop end
  return wrap(core.uop(op, out_dtype, srcs))
end
Tensor.ew = ew

-- the primitive on operands already of one dtype and shape
local function prim(op, out_dtype, ...)
  local srcs = {}
  for i, a in ipairs({ ... }) do srcs[i] = a.uop end
  return wrap(core.uop(op, out_dtype or select(1, ...).dtype, srcs))
end

local function check_kind(what, d, allowed)
  if not allowed[d.kind == "uint" and "int" or d.kind] then raise("%s: not defined for %s", what, tostring(d)) end
end
local NUM, INT, ALL, FLOAT = { int = true, float = true }, { int = true, bool = true },
  { int = true, float = true, bool = true }, { float = true }

-- a binary op: operands promoted and broadcast, then f(a, b) on tensors of one dtype and shape
local function binary(what, allowed, f)
  return function(a, b)
    local d = result_dtype(a, b)
    check_kind(what, d, allowed)
    if type(b) == "number" and is_tensor(a) then -- t op number: the number takes t's shape
      local x = a.dtype == d and a or a:cast(d)
      return f(x, const_shaped(b, d, x.shape), d)
    end
    local x = operands(what, d, false, a, b)
    return f(x[1], x[2], d)
  end
end

Tensor.add = binary("add", ALL, function(a, b, d) return prim(d.kind == "bool" and "OR" or "ADD", d, a, b) end)
Tensor.sub = binary("sub", NUM, function(a, b, d) return prim("SUB", d, a, b) end)
Tensor.mul = binary("mul", ALL, function(a, b, d) return prim(d.kind == "bool" and "AND" or "MUL", d, a, b) end)
Tensor.maximum = binary("maximum", ALL, function(a, b, d) return prim("MAX", d, a, b) end)
Tensor.minimum = binary("minimum", ALL, function(a, b, d)
  if d.kind == "float" then return prim("NEG", d, prim("MAX", d, prim("NEG", d, a), prim("NEG", d, b))) end
  return prim("CMPLT", dt.bool, a, b):where(a, b) -- bool, signed and unsigned alike
end)
Tensor.bitwise_and = binary("bitwise_and", INT, function(a, b, d) return prim("AND", d, a, b) end)
Tensor.bitwise_or = binary("bitwise_or", INT, function(a, b, d) return prim("OR", d, a, b) end)
Tensor.bitwise_xor = binary("bitwise_xor", INT, function(a, b, d) return prim("XOR", d, a, b) end)
Tensor.lshift = binary("lshift", { int = true }, function(a, b, d) return prim("SHL", d, a, b) end)
Tensor.rshift = binary("rshift", { int = true }, function(a, b, d) return prim("SHR", d, a, b) end)

-- true division: integers divide as floats
function Tensor.div(a, b)
  local d = result_dtype(a, b)
  if d.kind ~= "float" then d = Tensor.default_float end
  return ew("div", "FDIV", d, d, a, b)
end

-- floor division (PyTorch's floor_divide, Python's //): ints floor the truncating IDIV; x // 0 is 0
Tensor.idiv = binary("idiv", NUM, function(a, b, d)
  if d.kind == "float" then return prim("FDIV", d, a, b):floor() end
  local q = prim("IDIV", d, a, b)
  if d.kind == "uint" then return q end
  local r = prim("SUB", d, a, prim("MUL", d, q, b))
  local fix = prim("AND", dt.bool, r:ne(0), prim("XOR", dt.bool, r:lt(0), b:lt(0))):logical_and(b:ne(0))
  return fix:where(prim("SUB", d, q, const_tensor(1, d):expand(q.shape)), q)
end)

-- remainder with the divisor's sign (PyTorch's remainder, Python's %); ints: x % 0 is 0
Tensor.mod = binary("mod", NUM, function(a, b, d)
  if d.kind == "float" then
    -- a - b * floor(a / b), in float64 for narrower floats, so that it is exact in most cases
    local w = d.itemsize < 8 and dt.float64 or d
    local aw, bw = a:cast(w), b:cast(w)
    local r = aw - bw * (aw / bw):floor()
    return r:cast(d)
  end
  local r = prim("MOD", d, a, b)
  if d.kind == "uint" then return r end
  local fix = prim("AND", dt.bool, r:ne(0), prim("XOR", dt.bool, r:lt(0), b:lt(0)))
  return fix:where(prim("ADD", d, r, b), r)
end)

-- a ^ b: floats with C's pow; integers through float64 pow, rounded, and cast back (exact up to
-- 2^53; out of the int's range saturates); an integer to a negative power truncates (0 unless the
-- base is 1 or -1)
Tensor.pow = binary("pow", NUM, function(a, b, d)
  if d.kind == "float" then return prim("POW", d, a, b) end
  local p = prim("POW", dt.float64, a:cast(dt.float64), b:cast(dt.float64))
  return p:trunc():cast(d)
end)

local function compare(what, op, swap)
  return function(a, b)
    local d = result_dtype(a, b)
    if swap then a, b = b, a end
    return ew(what, op, dt.bool, d, a, b)
  end
end
Tensor.lt = compare("lt", "CMPLT")
Tensor.gt = compare("gt", "CMPLT", true)
Tensor.eq = compare("eq", "CMPEQ")
Tensor.ne = compare("ne", "CMPNE")
function Tensor.le(a, b) return Tensor.gt(a, b):logical_not() end
function Tensor.ge(a, b) return Tensor.lt(a, b):logical_not() end

-- logical ops take any dtype (nonzero is true) and give bool
local function truth(what, x) return as_tensor(what, x, dt.bool) end
function Tensor.logical_not(a) return ew("logical_not", "XOR", dt.bool, dt.bool, truth("logical_not", a), true) end
function Tensor.logical_and(a, b)
  return ew("logical_and", "AND", dt.bool, dt.bool, truth("logical_and", a), truth("logical_and", b))
end
function Tensor.logical_or(a, b)
  return ew("logical_or", "OR", dt.bool, dt.bool, truth("logical_or", a), truth("logical_or", b))
end
function Tensor.logical_xor(a, b)
  return ew("logical_xor", "XOR", dt.bool, dt.bool, truth("logical_xor", a), truth("logical_xor", b))
end
function Tensor:bitwise_not()
  check_kind("bitwise_not", self.dtype, INT)
  return prim("XOR", self.dtype, self, const_tensor(self.dtype.kind == "bool" and true or -1, self.dtype):expand(self.shape))
end

-- cond:where(a, b): a where cond (any dtype, nonzero is true), else b
function Tensor:where(a, b)
  local d = result_dtype(a, b)
  return ew("where", "WHERE", d, d, self, a, b)
end

function Tensor:cast(dtype)
  local d = type(dtype) == "string" and dt[dtype] or dtype
  if d == nil or getmetatable(d) ~= getmetatable(dt.float32) then
    raise("cast: %s is not a dtype", type(dtype) == "string" and ("'" .. dtype .. "'") or tostring(dtype))
  end
  dtype = d
  if dtype == self.dtype then return self end
  return wrap(core.uop("CAST", dtype, { self.uop }))
end
function Tensor:float() return self:cast(dt.float32) end
function Tensor:half() return self:cast(dt.float16) end
function Tensor:double() return self:cast(dt.float64) end
function Tensor:int() return self:cast(dt.int32) end
function Tensor:long() return self:cast(dt.int64) end
function Tensor:bool() return self:cast(dt.bool) end

-- ---- unary math ----------------------------------------------------------------------------

-- the tensor as a float (ints and bools become the default float, as in PyTorch)
local function floated(what, t)
  if not is_tensor(t) then raise("%s: expected a Tensor, got a %s", what, type(t)) end
  return t.dtype.kind == "float" and t or t:cast(Tensor.default_float)
end
local function unary(what, op)
  return function(t)
    local x = floated(what, t)
    return wrap(core.uop(op, x.dtype, { x.uop }))
  end
end
Tensor.exp2, Tensor.log2, Tensor.sqrt = unary("exp2", "EXP2"), unary("log2", "LOG2"), unary("sqrt", "SQRT")
Tensor.sin, Tensor.reciprocal = unary("sin", "SIN"), unary("reciprocal", "RECIPROCAL")

function Tensor:neg()
  check_kind("neg", self.dtype, NUM)
  return wrap(core.uop("NEG", self.dtype, { self.uop }))
end
function Tensor:exp() return (floated("exp", self) * (1 / math.log(2))):exp2() end
function Tensor:log() return floated("log", self):log2() * math.log(2) end
function Tensor:rsqrt() return floated("rsqrt", self):sqrt():reciprocal() end
-- cos(x) = sin(x + pi/2), in float64 for narrower floats so that the shift loses nothing
function Tensor:cos()
  local x = floated("cos", self)
  local w = x.dtype.itemsize < 8 and x:cast(dt.float64) or x
  return (w + math.pi / 2):sin():cast(x.dtype)
end
function Tensor:tan() return self:sin() / self:cos() end

function Tensor:abs()
  if self.dtype.kind == "bool" or self.dtype.kind == "uint" then return self end
  return self:lt(0):where(-self, self)
end
-- -1, 0 or 1 (NaN stays NaN); bools are their own sign
function Tensor:sign()
  local d = self.dtype
  if d.kind == "bool" then return self end
  local s = self:gt(0):cast(d) - self:lt(0):cast(d)
  return d.kind == "float" and self:ne(self):where(self, s) or s
end
-- rounding: integers and bools are already whole
function Tensor:trunc()
  if self.dtype.kind ~= "float" then return self end
  return wrap(core.uop("TRUNC", self.dtype, { self.uop }))
end
function Tensor:floor()
  if self.dtype.kind ~= "float" then return self end
  local t = self:trunc()
  return t:gt(self):where(t - 1, t)
end
function Tensor:ceil()
  if self.dtype.kind ~= "float" then return self end
  local t = self:trunc()
  return t:lt(self):where(t + 1, t)
end
-- to nearest, halves to even (as PyTorch and numpy)
function Tensor:round()
  if self.dtype.kind ~= "float" then return self end
  local f = self:floor()
  local d = self - f
  local half = f * 0.5
  local odd = half:trunc():ne(half)
  return d:gt(0.5):logical_or(d:eq(0.5):logical_and(odd)):where(f + 1, f)
end

function Tensor:relu() return self:maximum(0) end
function Tensor:sigmoid()
  local x = floated("sigmoid", self)
  return (1 + (-x):exp()):reciprocal()
end
function Tensor:tanh() return 2 * (2 * floated("tanh", self)):sigmoid() - 1 end
function Tensor:silu() return self * self:sigmoid() end
-- erf by Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7)
function Tensor:erf()
  local x = floated("erf", self)
  local a = x:abs()
  local t = (1 + 0.3275911 * a):reciprocal()
  local poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
  local y = 1 - poly * (-(a * a)):exp()
  return x:lt(0):where(-y, y)
end
-- gelu(): PyTorch's exact form x/2 (1 + erf(x/sqrt 2)); gelu("tanh") the tanh approximation
function Tensor:gelu(approximate)
  if type(approximate) == "table" then approximate = approximate.approximate end
  local x = floated("gelu", self)
  if approximate == "tanh" then
    return 0.5 * x * (1 + (math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)):tanh())
  elseif approximate ~= nil and approximate ~= "none" then
    raise("gelu: approximate is %s, expected 'none' or 'tanh'", tostring(approximate))
  end
  return 0.5 * x * (1 + (x * (1 / math.sqrt(2))):erf())
end
-- clip(lo, hi): either bound may be nil
function Tensor:clip(lo, hi)
  if lo == nil and hi == nil then raise("clip: give at least one of lo and hi") end
  local t = self
  if lo ~= nil then t = t:maximum(lo) end
  if hi ~= nil then t = t:minimum(hi) end
  return t
end
Tensor.clamp = Tensor.clip

-- ---- operators -----------------------------------------------------------------------------

Tensor.__add, Tensor.__sub, Tensor.__mul, Tensor.__div = Tensor.add, Tensor.sub, Tensor.mul, Tensor.div
Tensor.__idiv, Tensor.__mod, Tensor.__pow, Tensor.__unm = Tensor.idiv, Tensor.mod, Tensor.pow, Tensor.neg
Tensor.__band, Tensor.__bor, Tensor.__bxor = Tensor.bitwise_and, Tensor.bitwise_or, Tensor.bitwise_xor
Tensor.__shl, Tensor.__shr, Tensor.__bnot = Tensor.lshift, Tensor.rshift, Tensor.bitwise_not

return Tensor
