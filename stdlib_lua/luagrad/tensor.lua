-- luagrad.tensor: lazy tensors. A Tensor is a handle on a UOp of the tensor graph; operations
-- build graph and nothing runs until realize() (or totable/item/tostring) compiles and runs the
-- kernels that luagrad.schedule makes of it. The API is split over tensor_ops.lua (elementwise),
-- tensor_reduce.lua (reductions, matmul, softmax), tensor_movement.lua (views),
-- tensor_create.lua (creation, random numbers), tensor_index.lua (cat/stack/split, indexing,
-- gather, assignment), tensor_conv.lua (convolution, pooling) and tensor_nn.lua (norms, losses,
-- attention, embedding). Gradients (t:backward(), t.requires_grad, t.grad, lg.no_grad) are in
-- luagrad/autograd.lua.
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
-- * Views alias as in PyTorch: reshape, permute, expand, shrink and indexing give views, and
--   assignment into an index (t[{...}] = v) or t:assign(v) builds a new lazy value for the tensor
--   at the root of the views and every view of it sees the change (see "views" below). Tensors
--   computed from the old value (a + 1) keep it. Writing into an expanded view is an error.
local core = require "luagrad.core"
local realize = require "luagrad.realize"

local dt = core.dtypes
local Tensor = {}
Tensor.__index = Tensor
Tensor.default_float, Tensor.default_int = dt.float32, dt.int32

local getmetatable = getmetatable
local function is_tensor(x) return getmetatable(x) == Tensor end
Tensor.is_tensor = is_tensor

-- handles made or re-pointed inside lg.no_grad (luagrad.autograd detaches them at its end);
-- nil outside, so ordinary ops pay one test
local made
local function wrap(u)
  local t = setmetatable({ uop = u }, Tensor)
  if made then made[t] = true end
  return t
end
Tensor.wrap = wrap
-- Tensor.track_made(set) -> the previous set: collect the handles made from now on in set
function Tensor.track_made(set)
  local old = made
  made = set
  return old
end

local function shape_str(shape) return "(" .. table.concat(shape, ",") .. ")" end
Tensor.shape_str = shape_str

local function numel(shape)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  return n
end

-- Raise a Lua error at the caller's line: the first stack frame outside the tensor files (and
-- luagrad/autograd.lua).
local function raise(fmt, ...)
  local msg = select("#", ...) > 0 and fmt:format(...) or fmt
  local level = 2
  while true do
    local info = debug.getinfo(level, "S")
    if not info then break end
    local src = info.source
    if not (src:find("luagrad[/\\]tensor[%w_]*%.lua$") or src:find("luagrad[/\\]autograd%.lua$")) then break end
    level = level + 1
  end
  error(msg, level)
end
Tensor.raise = raise

-- ---- views --------------------------------------------------------------------------------
-- reshape, permute, expand and shrink (and what is built of them: transpose, squeeze, indexing...)
-- give views, as in PyTorch: the result remembers its parent and the step ({op, arg}), and the
-- parent holds its views weakly. Writing a tensor (setitem, assign) writes through its parents
-- to the tensor at the root, and every view under that root then reads the new value; a realize
-- also lets the views read the realized buffer instead of computing their parent again.

local weak_keys = { __mode = "k" }

-- t becomes a view of parent through the movement step op/arg
function Tensor.view_of(t, parent, op, arg)
  rawset(t, "_parent", parent)
  rawset(t, "_step", { op, arg })
  local views = rawget(parent, "_views")
  if not views then
    views = setmetatable({}, weak_keys)
    rawset(parent, "_views", views)
  end
  views[t] = true
  return t
end

-- the views under t read t's current value again
local function refresh(t)
  local views = rawget(t, "_views")
  if not views then return end
  for v in pairs(views) do
    local step = v._step
    v.uop = core.uop(step[1], t.dtype, { t.uop }, step[2])
    refresh(v)
  end
end

-- the parent's new value when its view t (through step) takes the value `new` (a Tensor)
local function write_back(t, parent, step, new)
  local op, arg = step[1], step[2]
  if op == "RESHAPE" then return new:reshape(parent.shape) end
  if op == "PERMUTE" then
    local inv = {}
    for i, p in ipairs(arg) do inv[p + 1] = i end
    return new:permute(inv)
  end
  if op == "PAD" then -- a view pad (strided indexing): only the parent's part is memory
    local r = {}
    for i, d in ipairs(parent.shape) do r[i] = { arg[2 * i - 1] + 1, arg[2 * i - 1] + d } end
    return new:shrink(r)
  end
  if op == "SHRINK" then
    local pads = {}
    for i, d in ipairs(parent.shape) do pads[i] = { arg[2 * i - 1], d - arg[2 * i] } end
    local inside = Tensor.full(t.shape, true):pad(pads)
    return inside:where(new:pad(pads), parent)
  end
  raise("setitem: cannot write into an expanded view %s of %s (its elements share memory)", shape_str(t.shape),
    shape_str(parent.shape))
end

-- on_write(t, node) is told of every write, with the node t (the root of the views written)
-- held before: luagrad.jit follows state and weights through it; nil when that is not loaded
local on_write
function Tensor.set_on_write(fn) on_write = fn end

-- t takes the value `new` (a Tensor of t's shape and dtype), written through to the tensors t
-- is a view of, and seen by their other views
function Tensor.write(t, new)
  local parent = rawget(t, "_parent")
  while parent do
    new = write_back(t, parent, t._step, new)
    t, parent = parent, rawget(parent, "_parent")
  end
  if on_write then on_write(t, t.uop) end
  t.uop = new.uop
  if made then made[t] = true end
  refresh(t)
end

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
  local u = realize.buffer_node(buf)
  if #shape ~= 1 then u = core.uop("RESHAPE", dtype, { u }, shape) end -- a tensor of its own, not a view
  return wrap(u)
end

-- Tensor(number | nested table | Tensor [, {dtype =, device =, requires_grad =}])
function Tensor.new(data, opts)
  opts = opts or {}
  local dtype = Tensor.check_dtype("Tensor", opts.dtype)
  local t
  if is_tensor(data) then
    t = data:detach():cast(dtype or data.dtype) -- a new tensor, as torch.tensor(t)
  elseif type(data) == "number" or type(data) == "boolean" then
    dtype = dtype or infer_dtype({ data })
    t = wrap(core.uop("RESHAPE", dtype, { core.const(dtype, data) }, {}))
  elseif type(data) == "table" then
    local shape, flat = flatten(data)
    t = from_values(flat, shape, dtype or infer_dtype(flat), opts.device)
  else
    raise("Tensor: cannot make a tensor of a %s", type(data))
  end
  if opts.requires_grad then t.requires_grad = true end
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
local setters = {} -- writable fields
-- Tensor.add_field(name, get [, set]): a field t.name read as get(t) and, with set, written as
-- set(t, value) (luagrad.autograd adds requires_grad and grad this way)
function Tensor.add_field(name, get, set) fields[name], setters[name] = get, set end
-- t.shape and other fields; t[i] and t[{...}] index (Tensor.getitem, tensor_index.lua)
function Tensor.__index(t, k)
  local m = Tensor[k] -- methods first: the most frequent lookup
  if m ~= nil then return m end
  local f = fields[k]
  if f then return f(t) end
  if type(k) ~= "string" then return Tensor.getitem(t, k) end
end

-- t[i] = v and t[{...}] = v assign (Tensor.setitem); other keys are plain fields
function Tensor.__newindex(t, k, v)
  if type(k) == "string" then
    if setters[k] then return setters[k](t, v) end
    if fields[k] then raise("Tensor: the field %s is read-only", k) end
    rawset(t, k, v)
  else
    Tensor.setitem(t, k, v)
    if made then made[t] = true end
  end
end

function Tensor:numel() return numel(self.shape) end
Tensor.shape_numel = numel -- the element count of a shape table

-- t:detach() -> Tensor: the same value, through which no gradient flows back (luagrad.autograd)
-- Tensor.func(name, params, value, inputs...) -> Tensor: value, marked as the composite op `name`
-- (params: integers) of the inputs, so that backward takes the gradient of the inputs from
-- Tensor.func_grads[name](g, out, params, inputs...) instead of differentiating value's graph.
-- For composites whose derived gradient is slow (conv2d's input gradient is a transposed conv).
Tensor.func_grads = {}
function Tensor.func(name, params, value, ...)
  local srcs = { value.uop }
  for i, t in ipairs({ ... }) do srcs[i + 1] = t.uop end
  return wrap(core.uop("FUNCTION", value.dtype, srcs, { name, table.unpack(params) }))
end

function Tensor:detach() return wrap(core.uop("DETACH", self.dtype, { self.uop })) end

-- a tensor of no elements that is not a buffer yet (a kernel of no iterations is not made)
local function empty(t)
  local u = t.uop
  if u.numel ~= 0 then return false end
  local op = u.op
  return not (op == "BUFFER" or (op == "RESHAPE" and u.src[1].op == "BUFFER"))
end

-- t takes the node u (a realized value: a view of a buffer), seen by t's views
function Tensor.set_node(t, u)
  t.uop = u
  refresh(t)
end

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
  for i, u in ipairs(realize.run_many(roots)) do Tensor.set_node(todo[i], u) end
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
  Tensor.write(self, v:cast(self.dtype):expand(self.shape))
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
