-- Reductions of luagrad.tensor, and what is composed from them: matmul, dot, softmax,
-- log_softmax, logsumexp, argmax/argmin, var/std.
--
-- Each reduction takes (axis, keepdim): axis a number (1-based, negative from the end), a table of
-- them, or nil for every axis; keepdim keeps the reduced axes with size 1. var and std also take
-- a correction (default 1, Bessel's, as PyTorch): t:var(axis, keepdim, correction), or an options
-- table in any position after the axis: t:var({axis = 2, keepdim = true, correction = 0}),
-- t:std(2, {correction = 0}).
-- Dtypes: sum and prod of bool, int8, int16, uint8, uint16 give int32 (PyTorch: int64); float16
-- and bfloat16 accumulate in float32 and give their own dtype back; mean, var, std, logsumexp,
-- softmax of integers give the default float. max/min/argmax/argmin of an empty axis are errors;
-- a sum over it is 0, a prod 1, a mean NaN. argmax/argmin give 1-based int32 positions of the
-- first occurrence (NaN counts as the largest, as in PyTorch).
local core = require "luagrad.core"
local Tensor = require "luagrad.tensor"

local dt = core.dtypes
local wrap, shape_str, is_tensor, raise = Tensor.wrap, Tensor.shape_str, Tensor.is_tensor, Tensor.raise

-- the sorted 0-based axes of `axis` (nil: all; a number; a table of numbers)
local function reduce_axes(t, axis, what)
  local nd, axes, seen = t.ndim, {}, {}
  if axis == nil then
    for i = 1, nd do axes[i] = i - 1 end
    return axes
  end
  local list = type(axis) == "table" and axis or { axis }
  for _, a in ipairs(list) do
    if nd == 0 and (a == 1 or a == -1) then goto continue end -- the one "axis" of a scalar
    if math.type(a) ~= "integer" or a == 0 or a > nd or a < -nd then
      raise("%s: axis %s is out of range for %d dimensions %s", what, tostring(a), nd, shape_str(t.shape))
    end
    a = a > 0 and a - 1 or nd + a
    if seen[a] then raise("%s: axis %d appears twice", what, a + 1) end
    seen[a] = true
    axes[#axes + 1] = a
    ::continue::
  end
  if type(axis) ~= "table" and type(axis) ~= "number" then
    raise("%s: axis is a %s, expected a number, a table of numbers or nil", what, type(axis))
  end
  table.sort(axes)
  return axes
end
Tensor.reduce_axes = reduce_axes

local function drop_axes(t, axes, keepdim, shape)
  if keepdim then return t end
  local drop, out = {}, {}
  for _, a in ipairs(axes) do drop[a + 1] = true end
  for i, d in ipairs(shape) do
    if not drop[i] then out[#out + 1] = d end
  end
  return t:reshape(out)
end

local SPLIT_FROM, GROUPS = 1 << 18, 256

-- the primitive reduce (op "ADD", "MAX" or "MUL") over 0-based axes, in t's dtype. A reduction of
-- SPLIT_FROM or more elements to one value runs in two steps (GROUPS partial results, then
-- their reduction), so that the first one has a loop to share among the cores
local function reduce(op, t, axes, keepdim)
  if #axes == 0 then return t end
  local n = t.uop.numel
  if #axes == t.ndim and n >= SPLIT_FROM and n % GROUPS == 0 then
    local parts = wrap(core.uop("REDUCE_AXIS", t.dtype, { t:reshape(GROUPS, n // GROUPS).uop }, { op, 1 }))
    local r = wrap(core.uop("REDUCE_AXIS", t.dtype, { parts.uop }, { op, 0 }))
    local ones = {}
    for i = 1, t.ndim do ones[i] = 1 end
    return keepdim and r:reshape(ones) or r:reshape({})
  end
  local arg = { op }
  for _, a in ipairs(axes) do arg[#arg + 1] = a end
  local r = wrap(core.uop("REDUCE_AXIS", t.dtype, { t.uop }, arg))
  return drop_axes(r, axes, keepdim, t.shape)
end
Tensor.reduce_prim = reduce

local function nonempty(what, t, axes)
  for _, a in ipairs(axes) do
    if t.shape[a + 1] == 0 then
      raise("%s: cannot reduce over axis %d of size 0 %s", what, a + 1, shape_str(t.shape))
    end
  end
end

local function check(what, t)
  if not is_tensor(t) then raise("%s: expected a Tensor, got a %s", what, type(t)) end
end

-- the dtype sums and products accumulate in, and the one they give back
local function acc_dtype(d)
  if d.kind == "bool" or (d.kind ~= "float" and d.itemsize < 4) then return Tensor.default_int, Tensor.default_int end
  if d.kind == "float" and d.itemsize < 4 then return dt.float32, d end
  return d, d
end

local function sum_like(what, op)
  return function(self, axis, keepdim)
    check(what, self)
    local axes = reduce_axes(self, axis, what)
    local acc, out = acc_dtype(self.dtype)
    return reduce(op, self:cast(acc), axes, keepdim):cast(out)
  end
end
Tensor.sum, Tensor.prod = sum_like("sum", "ADD"), sum_like("prod", "MUL")

function Tensor:max(axis, keepdim)
  check("max", self)
  local axes = reduce_axes(self, axis, "max")
  nonempty("max", self, axes)
  return reduce("MAX", self, axes, keepdim)
end
-- min: max of the order-reversing map (-x for floats, bitwise not for ints and bools)
function Tensor:min(axis, keepdim)
  check("min", self)
  local axes = reduce_axes(self, axis, "min")
  nonempty("min", self, axes)
  if self.dtype.kind == "float" then return -reduce("MAX", -self, axes, keepdim) end
  return reduce("MAX", self:bitwise_not(), axes, keepdim):bitwise_not()
end
function Tensor:any(axis, keepdim)
  check("any", self)
  return reduce("MAX", self:bool(), reduce_axes(self, axis, "any"), keepdim)
end
function Tensor:all(axis, keepdim)
  check("all", self)
  return reduce("MAX", self:bool():logical_not(), reduce_axes(self, axis, "all"), keepdim):logical_not()
end

local function count(t, axes)
  local n = 1
  for _, a in ipairs(axes) do n = n * t.shape[a + 1] end
  return n
end

local function floated(t)
  return t.dtype.kind == "float" and t or t:cast(Tensor.default_float)
end

-- 0-based axes as the 1-based table the public methods take
local function axes1(axes)
  local t = {}
  for i, a in ipairs(axes) do t[i] = a + 1 end
  return t
end

function Tensor:mean(axis, keepdim)
  check("mean", self)
  local axes = reduce_axes(self, axis, "mean")
  local x = floated(self)
  local w = x.dtype.itemsize < 4 and x:cast(dt.float32) or x
  return (reduce("ADD", w, axes, keepdim) / count(self, axes)):cast(x.dtype)
end

-- (axis, keepdim, correction) or an options table among them
local function var_args(what, self, axis, keepdim, correction)
  local opts
  local function is_opts(v) return type(v) == "table" and next(v) ~= nil and v[1] == nil end
  if is_opts(axis) then opts, axis = axis, nil
  elseif is_opts(keepdim) then opts, keepdim = keepdim, nil
  elseif is_opts(correction) then opts, correction = correction, nil end
  if opts then
    if opts.axis ~= nil then axis = opts.axis end
    if opts.dim ~= nil then axis = opts.dim end
    if opts.keepdim ~= nil then keepdim = opts.keepdim end
    if opts.correction ~= nil then correction = opts.correction end
  end
  if correction == nil then correction = 1 end
  if type(correction) ~= "number" then raise("%s: correction is a %s, expected a number", what, type(correction)) end
  return reduce_axes(self, axis, what), keepdim, correction
end

local function var(what, self, axis, keepdim, correction)
  check(what, self)
  local axes, kd, corr = var_args(what, self, axis, keepdim, correction)
  local x = floated(self)
  if x.dtype.itemsize < 4 then x = x:cast(dt.float32) end
  local a1 = axes1(axes)
  local d = x - x:mean(a1, true)
  local r = (d * d):sum(a1, kd) / math.max(0, count(self, axes) - corr)
  return r:cast(floated(self).dtype)
end
function Tensor:var(axis, keepdim, correction) return var("var", self, axis, keepdim, correction) end
function Tensor:std(axis, keepdim, correction) return var("std", self, axis, keepdim, correction):sqrt() end

function Tensor:logsumexp(axis, keepdim)
  check("logsumexp", self)
  local axes = reduce_axes(self, axis, "logsumexp")
  local x, a1 = floated(self), axes1(axes)
  local m
  if count(self, axes) == 0 then
    m = x:sum(a1, true) * 0
  else
    m = x:max(a1, true)
    m = m:abs():eq(math.huge):where(0, m) -- all -inf (or an inf) stays finite here
  end
  local r = (x - m):exp():sum(a1, true):log() + m
  return drop_axes(r, axes, keepdim, self.shape)
end

-- 1-based position of the first largest value along one axis (nil: of the flattened tensor)
local function argbest(what, self, axis, keepdim, key)
  check(what, self)
  if axis == nil then
    local r = argbest(what, self:reshape(self:numel()), 1, false, key)
    if keepdim then
      local ones = {}
      for i = 1, self.ndim do ones[i] = 1 end
      r = r:reshape(ones)
    end
    return r
  end
  if type(axis) ~= "number" then raise("%s: axis is a %s, expected a number or nil", what, type(axis)) end
  local axes = reduce_axes(self, axis, what)
  if #axes == 0 then return Tensor.full(self.shape, 1, { dtype = Tensor.default_int }) end
  nonempty(what, self, axes)
  local a, x = axes[1], key(self)
  local n = self.shape[a + 1]
  local m = reduce("MAX", x, axes, true)
  local match = x:eq(m)
  if x.dtype.kind == "float" then match = match:logical_or(x:ne(x)) end
  local shape = {}
  for i = 1, self.ndim do shape[i] = i == a + 1 and n or 1 end
  local rev = Tensor.arange(n, 0, -1):reshape(shape) -- n .. 1
  local best = reduce("MAX", match:cast(rev.dtype) * rev, axes, keepdim)
  return (n + 1) - best
end
function Tensor:argmax(axis, keepdim) return argbest("argmax", self, axis, keepdim, function(t) return t end) end
function Tensor:argmin(axis, keepdim)
  return argbest("argmin", self, axis, keepdim, function(t)
    if t.dtype.kind == "float" then return -t end
    return t:bitwise_not()
  end)
end

-- ---- composed ------------------------------------------------------------------------------

local function one_axis(what, t, axis)
  if axis == nil then axis = -1 end
  local axes = reduce_axes(t, axis, what)
  if type(axis) ~= "number" then raise("%s: axis is a %s, expected a number", what, type(axis)) end
  return axes[1] and axes[1] + 1 or nil
end

-- softmax(axis = -1), stable: exp(x - max) / sum
function Tensor:softmax(axis)
  check("softmax", self)
  local a, x = one_axis("softmax", self, axis), floated(self)
  if a == nil then return x / x end -- a scalar
  if self.shape[a] == 0 then return x end
  local e = (x - x:max(a, true)):exp()
  return e / e:sum(a, true)
end
function Tensor:log_softmax(axis)
  check("log_softmax", self)
  local a, x = one_axis("log_softmax", self, axis), floated(self)
  if a == nil then return x - x end
  if self.shape[a] == 0 then return x end
  local s = x - x:max(a, true)
  return s - s:exp():sum(a, true):log()
end

-- matmul as PyTorch: 1-D operands get a dimension for the product and lose it after; batch
-- dimensions broadcast. Integers accumulate as sum does and give the promoted dtype back.
local function matmul(what, a, b)
  if not is_tensor(a) or not is_tensor(b) then raise("%s: expected two Tensors", what) end
  if a.ndim == 0 or b.ndim == 0 then
    raise("%s: both operands need at least 1 dimension, got %s and %s", what, shape_str(a.shape), shape_str(b.shape))
  end
  local d = core.promote(a.dtype, b.dtype)
  if d.kind == "bool" then raise("%s: not defined for bool", what) end
  local x = a.ndim == 1 and a:reshape(1, a.shape[1]) or a
  local y = b.ndim == 1 and b:reshape(b.shape[1], 1) or b
  local k1, k2 = x.shape[x.ndim], y.shape[y.ndim - 1]
  if k1 ~= k2 then
    raise("%s: shapes %s and %s do not match (%d vs %d)", what, shape_str(a.shape), shape_str(b.shape), k1, k2)
  end
  local ba, bb = { table.unpack(x.shape, 1, x.ndim - 2) }, { table.unpack(y.shape, 1, y.ndim - 2) }
  Tensor.broadcast_shape(what, ba, bb)
  local xs = x:cast(d):unsqueeze(-2)                  -- (..., n, 1, k)
  local ys = y:cast(d):transpose(-1, -2):unsqueeze(-3) -- (..., 1, m, k)
  local r = (xs * ys):sum(-1):cast(d)
  if a.ndim == 1 then r = r:squeeze(-2) end
  if b.ndim == 1 then r = r:squeeze(-1) end
  return r
end
function Tensor.matmul(a, b) return matmul("matmul", a, b) end
-- dot: the inner product of two 1-D tensors; other shapes as matmul (as tinygrad)
function Tensor.dot(a, b) return matmul("dot", a, b) end

return Tensor
