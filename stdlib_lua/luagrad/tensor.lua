-- luagrad.tensor: lazy tensors. A Tensor is a handle on a UOp of the tensor graph; operations
-- build graph and nothing runs until realize() (or totable/item/tostring) compiles and runs the
-- kernels that luagrad.schedule makes of it. The API is split over tensor_ops.lua (elementwise),
-- tensor_reduce.lua (reductions, matmul, softmax), tensor_movement.lua (views),
-- tensor_create.lua (creation, random numbers) and tensor_index.lua (cat/stack/split, indexing,
-- gather, assignment).
--
-- Conventions users see (the contract of issue 3):
-- * Axes, element positions, ranges and index VALUES held in tensors (argmax/argmin results,
--   gather indices) are 1-based, as in torch7; negative axes/positions count from the end. Plain
--   numeric values are not indices: arange(3) is 0,1,2.
-- * Numbers in operations are "weak" scalars, as in PyTorch and tinygrad: they take the tensor's
--   dtype, except that a float number with an integer or bool tensor gives the default float
--   (float32), and an integer number with a bool tensor gives the default int (int32).
-- * The default int is int32 (tinygrad's), not PyTorch's int64: sum/prod of bool, int8, int16,
--   uint8, uint16 give int32; arange of integers, argmax/argmin and randint give int32.
-- * Integer `//` and `%` floor like PyTorch (the remainder has the divisor's sign); an integer
--   division or remainder by zero gives 0 (PyTorch raises). Integer overflow wraps; float to int
--   casts truncate and saturate (NaN gives 0).
-- * Errors on bad input are Lua errors that name the op and the shapes or values, raised at the
--   caller's line (the first stack frame outside luagrad/tensor*.lua).
-- * Assignment into an index (t[{...}] = v) builds a new lazy value and points the handle `t` at
--   it; other tensors that were views of the old value are NOT updated (no aliasing).
local core = require "luagrad.core"
local realize = require "luagrad.realize"

local dt = core.dtypes
local Tensor = {}
Tensor.__index = Tensor
Tensor.default_float, Tensor.default_int = dt.float32, dt.int32

local function is_tensor(x) return getmetatable(x) == Tensor end
Tensor.is_tensor = is_tensor

local function wrap(u) return setmetatable({ uop = u }, Tensor) end
Tensor.wrap = wrap

local function shape_str(shape) return "(" .. table.concat(shape, ",") .. ")" end
Tensor.shape_str = shape_str

local function numel(shape)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  return n
end

-- Raise a Lua error at the caller's line: the first stack frame outside the tensor files.
local function raise(fmt, ...)
  local msg = select("#", ...) > 0 and fmt:format(...) or fmt
  local level = 2
  while true do
    local info = debug.getinfo(level, "S")
    if not info then break end
    if not info.source:find("luagrad[/\\]tensor[%w_]*%.lua$") then break end
    level = level + 1
  end
  error(msg, level)
end
Tensor.raise = raise

-- an optional dtype option: a DType, or its name as a string ("float32")
function Tensor.check_dtype(what, d)
  if type(d) == "string" then
    if not dt[d] then raise("%s: unknown dtype '%s'", what, d) end
    return dt[d]
  end
  if d ~= nil and getmetatable(d) ~= getmetatable(dt.float32) then raise("%s: dtype %s is not a dtype", what, tostring(d)) end
  return d
end

-- ---- creation ------------------------------------------------------------------------------

-- shape and flat values of a nested table; an error names the first ragged or odd item
local function flatten(data)
  local shape, flat = {}, {}
  local probe = data
  while type(probe) == "table" do
    shape[#shape + 1] = #probe
    probe = probe[1]
  end
  local function walk(t, depth, path)
    if depth > #shape then
      local ty = type(t)
      if ty ~= "number" and ty ~= "boolean" then
        raise("Tensor: item %s is a %s, expected a number or a boolean", path, ty)
      end
      flat[#flat + 1] = t
      return
    end
    if type(t) ~= "table" or #t ~= shape[depth] then
      raise("Tensor: ragged table: item %s has %s, expected %d items", path,
        type(t) == "table" and (#t .. " items") or ("a " .. type(t)), shape[depth])
    end
    for i = 1, #t do walk(t[i], depth + 1, path .. "[" .. i .. "]") end
  end
  walk(data, 1, "")
  return shape, flat
end

local function infer_dtype(flat)
  if #flat == 0 then return Tensor.default_float end
  local kind = "bool"
  for _, v in ipairs(flat) do
    if type(v) == "number" then
      if math.type(v) == "float" then return Tensor.default_float end
      kind = "int"
    end
  end
  return kind == "int" and Tensor.default_int or dt.bool
end

-- a realized tensor of `shape` holding the flat values
local function from_values(flat, shape, dtype, device)
  local buf = core.buffer(device or realize.device, dtype, #flat)
  buf:write(flat)
  return wrap(realize.buffer_node(buf)):reshape(shape)
end

-- Tensor(number | nested table | Tensor [, {dtype =, device =, requires_grad =}])
function Tensor.new(data, opts)
  opts = opts or {}
  local dtype = Tensor.check_dtype("Tensor", opts.dtype)
  local t
  if is_tensor(data) then
    t = data:cast(dtype or data.dtype)
  elseif type(data) == "number" or type(data) == "boolean" then
    dtype = dtype or infer_dtype({ data })
    t = wrap(core.uop("RESHAPE", dtype, { core.const(dtype, data) }, {}))
  elseif type(data) == "table" then
    local shape, flat = flatten(data)
    t = from_values(flat, shape, dtype or infer_dtype(flat), opts.device)
  else
    raise("Tensor: cannot make a tensor of a %s", type(data))
  end
  t.requires_grad = opts.requires_grad or nil
  return t
end

-- a shape from varargs or a table, with an optional options table last
local function shape_args(...)
  local args, opts = { ... }, nil
  if type(args[#args]) == "table" and (#args > 1 or #args[1] == 0 and next(args[1]) ~= nil) then
    opts = table.remove(args)
  end
  local shape = type(args[1]) == "table" and args[1] or args
  for i, d in ipairs(shape) do
    if math.type(d) ~= "integer" or d < 0 then
      raise("shape: size %d is %s, expected an integer >= 0", i, tostring(d))
    end
  end
  return { table.unpack(shape) }, opts or {}
end

Tensor.shape_args, Tensor.infer_dtype, Tensor.from_values = shape_args, infer_dtype, from_values

-- ---- inspection ----------------------------------------------------------------------------

local fields = {
  shape = function(t) return t.uop.shape or {} end,
  ndim = function(t) return t.uop.ndim or 0 end,
  dtype = function(t) return t.uop.dtype end,
  device = function() return realize.device end,
}
-- t.shape and other fields; t[i] and t[{...}] index (Tensor.getitem, tensor_index.lua)
function Tensor.__index(t, k)
  local f = fields[k]
  if f then return f(t) end
  if type(k) == "string" then return Tensor[k] end
  return Tensor.getitem(t, k)
end

-- t[i] = v and t[{...}] = v assign (Tensor.setitem); other keys are plain fields
function Tensor.__newindex(t, k, v)
  if type(k) == "string" then
    if fields[k] then raise("Tensor: the field %s is read-only", k) end
    rawset(t, k, v)
  else
    Tensor.setitem(t, k, v)
  end
end

function Tensor:numel() return numel(self.shape) end
Tensor.shape_numel = numel -- the element count of a shape table

local function empty(t) return t:numel() == 0 and t.uop.op ~= "BUFFER" and (t.uop.op ~= "RESHAPE" or t.uop.src[1].op ~= "BUFFER") end

-- Tensor.realize_all(list): realize the tensors of the list together, in one schedule, so that
-- what their graphs share is computed once (an optimizer step, all gradients of a backward)
function Tensor.realize_all(list)
  local todo, roots = {}, {}
  for i, t in ipairs(list) do
    if not is_tensor(t) then raise("realize_all: item %d is a %s, expected a Tensor", i, type(t)) end
    if empty(t) then
      t.uop = from_values({}, t.shape, t.dtype).uop -- nothing to compute
    else
      todo[#todo + 1], roots[#roots + 1] = t, t.uop
    end
  end
  for i, u in ipairs(realize.run_many(roots)) do todo[i].uop = u end
  return list
end

function Tensor:realize()
  Tensor.realize_all({ self })
  return self
end

-- t:assign(x): the handle t takes the value of x (a tensor or a number, cast to t's dtype and
-- broadcast to t's shape); lazy like every op. Returns t.
function Tensor:assign(x)
  local v = is_tensor(x) and x or Tensor.new(x, { dtype = self.dtype })
  local ok = #v.shape <= #self.shape
  for i = 1, #v.shape do
    local d = v.shape[#v.shape - i + 1]
    ok = ok and (d == 1 or d == self.shape[#self.shape - i + 1])
  end
  if not ok then raise("assign: a value of shape %s does not fit a tensor of shape %s", shape_str(v.shape), shape_str(self.shape)) end
  v = v:cast(self.dtype):expand(self.shape)
  self.uop = v.uop
  return self
end

-- nested Lua tables of the values (a number or boolean for a 0-d tensor)
function Tensor:totable()
  self:realize()
  local flat, shape = realize.values(self.uop), self.shape
  local pos = 0
  local function build(depth)
    if depth > #shape then
      pos = pos + 1
      return flat[pos]
    end
    local out = {}
    for i = 1, shape[depth] do out[i] = build(depth + 1) end
    return out
  end
  return build(1)
end

function Tensor:item()
  if self:numel() ~= 1 then
    raise("item: the tensor has %d elements %s, expected 1", self:numel(), shape_str(self.shape))
  end
  self:realize()
  return realize.values(self.uop)[1]
end

-- How PyTorch's formatter writes the numbers `shown`: a format for one value, then all of them
-- right-aligned to one width. Floats that are all whole print as "1.", others with 4 decimals,
-- in scientific notation when the magnitudes span more than 1000x, exceed 1e8 or go below 1e-4.
local function formatter(shown, isfloat)
  local fmt = "%d"
  if isfloat then
    local lo, hi, whole = math.huge, 0, true
    for _, v in ipairs(shown) do
      local a = math.abs(v)
      if v == v and a ~= math.huge and a ~= 0 then
        lo, hi, whole = math.min(lo, a), math.max(hi, a), whole and v == math.floor(v)
      end
    end
    local sci = hi > 0 and (hi / lo > 1000 or hi > 1e8 or (not whole and lo < 1e-4))
    fmt = sci and "%.4e" or whole and "%.0f." or "%.4f"
  end
  local function one(v)
    if type(v) == "boolean" then return tostring(v) end
    if v ~= v then return "nan" end
    if math.abs(v) == math.huge then return v > 0 and "inf" or "-inf" end
    return fmt:format(v)
  end
  local width = 0
  for _, v in ipairs(shown) do width = math.max(width, #one(v)) end
  return function(v)
    local str = one(v)
    return (" "):rep(width - #str) .. str
  end
end

-- tostring(t): values as PyTorch prints them (aligned columns), with the dtype when not a default
-- one, the size of an empty tensor, and past 1000 elements only the first and last 3 of each axis
function Tensor:__tostring()
  local shape = self.shape
  local vals = realize.values(self:realize().uop)
  local strides, acc = {}, 1
  for d = #shape, 1, -1 do
    strides[d], acc = acc, acc * shape[d]
  end
  local summarize = #vals > 1000
  local function build(depth, offset, indent, num)
    if depth > #shape then return num(vals[offset + 1]) end
    local parts, n = {}, shape[depth]
    for i = 1, n do
      if summarize and n > 6 and i == 4 then
        parts[#parts + 1] = depth == #shape and " ..." or "..."
      elseif not (summarize and n > 6 and i > 3 and i <= n - 3) then
        parts[#parts + 1] = build(depth + 1, offset + (i - 1) * strides[depth], indent .. " ", num)
      end
    end
    local sep = depth == #shape and ", " or (",\n" .. ("\n"):rep(#shape - depth - 1) .. indent .. " ")
    return "[" .. table.concat(parts, sep) .. "]"
  end
  local body = "[]"
  if #vals > 0 then
    local shown = {}
    build(1, 0, "", function(v) shown[#shown + 1] = v return "" end)
    body = build(1, 0, "       ", formatter(shown, self.dtype.kind == "float"))
  end
  local extra = ""
  if #vals == 0 and #shape > 1 then extra = ", size=(" .. table.concat(shape, ", ") .. ")" end
  if self.dtype ~= Tensor.default_float and self.dtype ~= Tensor.default_int and self.dtype.kind ~= "bool" then
    extra = extra .. ", dtype=" .. tostring(self.dtype)
  end
  return "tensor(" .. body .. extra .. ")"
end

return Tensor
