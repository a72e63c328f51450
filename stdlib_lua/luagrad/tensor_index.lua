-- Joining, splitting and indexing of luagrad.tensor: cat, stack, tile, split, chunk, t[i],
-- t[{...}], assignment t[{...}] = v, gather. All are views or lazy compositions (pad, shrink,
-- where over masks); nothing copies until realized.
--
-- Indexing (1-based, as torch7): t[i] is row i (negative from the end), the first axis dropped;
-- t[{k1, k2, ...}] has one key per axis from the first (missing ones take the whole axis):
--   a number i      selects position i and drops the axis
--   {}              the whole axis
--   {i}             the range i..i (the axis is kept, size 1)
--   {i, j}          the inclusive range i..j (negative counts from the end; j = i - 1 is empty)
--   {i, j, step}    every step-th position of i..j (step >= 1)
-- Assignment t[key] = v (v a number or a tensor that broadcasts to t[key]'s shape, cast to t's
-- dtype) builds the new value lazily, where(mask, v padded into place, old value), and points the
-- handle t at it. Tensors that were views of t's old value (t[1], t:reshape(...)) keep the old
-- values: luagrad tensors do not alias.
-- gather(axis, index): out[...i...] = t[...index[...i...]...] along axis, index values 1-based,
-- index with t's number of dimensions and no larger than t on the other axes (as PyTorch).
-- Index values outside 1..size give 0 (PyTorch raises; a lazy graph cannot check).
local core = require "luagrad.core"
local Tensor = require "luagrad.tensor"

local dt = core.dtypes
local shape_str, is_tensor, raise = Tensor.shape_str, Tensor.is_tensor, Tensor.raise

local function check_axis(what, ax, nd)
  if math.type(ax) ~= "integer" or ax == 0 or ax > nd or ax < -nd then
    raise("%s: axis %s is out of range for %d dimensions (use 1..%d or -%d..-1)", what, tostring(ax), nd, nd, nd)
  end
  return ax > 0 and ax or nd + ax + 1
end

-- ---- cat, stack, tile ----------------------------------------------------------------------

-- the list and axis of cat/stack, called as f({a, b, ...}, axis) or as a:f(b, c, ..., axis)
local function list_args(what, list, axis, ...)
  if is_tensor(list) then
    local args = { list, axis, ... }
    list, axis = {}, nil
    for _, v in ipairs(args) do
      if is_tensor(v) then list[#list + 1] = v else axis = v; break end
    end
  end
  if type(list) ~= "table" or #list == 0 then raise("%s: expected a non-empty list of tensors", what) end
  return list, axis
end

-- Tensor.cat({a, b, ...}, axis = 1), or a:cat(b, c, ..., axis)
function Tensor.cat(...)
  local list, axis = list_args("cat", ...)
  for i, t in ipairs(list) do
    if not is_tensor(t) then raise("cat: item %d is a %s, expected a Tensor", i, type(t)) end
  end
  local first = list[1]
  local nd = first.ndim
  if nd == 0 then raise("cat: cannot concatenate 0-d tensors (use stack)") end
  local a = check_axis("cat", axis or 1, nd)
  local d, total = first.dtype, 0
  for i, t in ipairs(list) do
    if t.ndim ~= nd then
      raise("cat: tensor %d has shape %s, tensor 1 %s (different number of dimensions)", i, shape_str(t.shape),
        shape_str(first.shape))
    end
    for k = 1, nd do
      if k ~= a and t.shape[k] ~= first.shape[k] then
        raise("cat: tensor %d has shape %s, tensor 1 %s (axis %d differs)", i, shape_str(t.shape), shape_str(first.shape), k)
      end
    end
    d = core.promote(d, t.dtype)
    total = total + t.shape[a]
  end
  if #list == 1 then return first:cast(d) end
  local out, offset = nil, 0
  for _, t in ipairs(list) do
    local n = t.shape[a]
    if n > 0 or (total == 0 and out == nil) then
      local pads = {}
      pads[a] = { offset, total - offset - n }
      local p = t:cast(d):pad(pads)
      if out == nil then
        out = p
      else
        out = Tensor.full(t.shape, true):pad(pads):where(p, out)
      end
    end
    offset = offset + n
  end
  return out
end

-- Tensor.stack({a, b, ...}, axis = 1): the tensors (one shape) along a new axis
function Tensor.stack(...)
  local list, axis = list_args("stack", ...)
  local first = list[1]
  local parts = {}
  for i, t in ipairs(list) do
    if not is_tensor(t) then raise("stack: item %d is a %s, expected a Tensor", i, type(t)) end
    local same = t.ndim == first.ndim
    for k = 1, first.ndim do same = same and t.shape[k] == first.shape[k] end
    if not same then
      raise("stack: tensor %d has shape %s, tensor 1 %s", i, shape_str(t.shape), shape_str(first.shape))
    end
  end
  local a = check_axis("stack", axis or 1, first.ndim + 1)
  for i, t in ipairs(list) do parts[i] = t:unsqueeze(a) end
  return Tensor.cat(parts, a)
end

local function sizes(what, ...)
  local a = { ... }
  local s = type(a[1]) == "table" and a[1] or a
  for i, v in ipairs(s) do
    if math.type(v) ~= "integer" or v < 0 then raise("%s: size %d is %s, expected an integer >= 0", what, i, tostring(v)) end
  end
  return s
end

-- tile(reps...) as torch.tile: reps shorter than ndim get leading 1s, longer add leading axes
function Tensor:tile(...)
  local reps = sizes("tile", ...)
  local nd = math.max(#reps, self.ndim)
  local un, ex, out = {}, {}, {}
  for i = 1, nd do
    local r = reps[i - (nd - #reps)] or 1
    local s = self.shape[i - (nd - self.ndim)] or 1
    un[#un + 1], un[#un + 2] = 1, s
    ex[#ex + 1], ex[#ex + 2] = r, s
    out[i] = r * s
  end
  return self:reshape(un):expand(ex):reshape(out)
end
-- t["repeat"](t, ...) as torch's repeat (reps at least ndim long); `repeat` is a Lua keyword
Tensor["repeat"] = function(self, ...)
  local reps = sizes("repeat", ...)
  if #reps < self.ndim then
    raise("repeat: %d sizes given for %d dimensions %s", #reps, self.ndim, shape_str(self.shape))
  end
  return self:tile(reps)
end

-- ---- split, chunk --------------------------------------------------------------------------

-- split(size, axis = 1): pieces of `size` (the last may be smaller); split({s1, s2, ...}, axis):
-- pieces of those sizes (they must add up to the axis). A Lua list of views.
function Tensor:split(size, axis)
  if self.ndim == 0 then raise("split: a 0-d tensor has no axis to split") end
  local a = check_axis("split", axis or 1, self.ndim)
  local d = self.shape[a]
  local list = {}
  if type(size) == "table" then
    local total = 0
    for i, s in ipairs(size) do
      if math.type(s) ~= "integer" or s < 0 then raise("split: size %d is %s, expected an integer >= 0", i, tostring(s)) end
      total = total + s
    end
    if total ~= d then
      raise("split: sizes {%s} add up to %d, but axis %d has size %d", table.concat(size, ","), total, a, d)
    end
    list = size
  else
    if math.type(size) ~= "integer" or size < 1 then raise("split: size is %s, expected an integer >= 1", tostring(size)) end
    for start = 0, d - 1, size do list[#list + 1] = math.min(size, d - start) end
    if d == 0 then list = { 0 } end
  end
  local out, offset = {}, 0
  for i, s in ipairs(list) do
    local r = {}
    r[a] = { offset + 1, offset + s }
    out[i] = self:shrink(r)
    offset = offset + s
  end
  return out
end

-- chunk(n, axis = 1): at most n pieces of ceil(size / n) (as torch.chunk). A Lua list.
function Tensor:chunk(n, axis)
  if math.type(n) ~= "integer" or n < 1 then raise("chunk: n is %s, expected an integer >= 1", tostring(n)) end
  if self.ndim == 0 then raise("chunk: a 0-d tensor has no axis to split") end
  local a = check_axis("chunk", axis or 1, self.ndim)
  local d = self.shape[a]
  if d == 0 then
    local z = {}
    for i = 1, n do z[i] = 0 end
    return self:split(z, a)
  end
  return self:split((d + n - 1) // n, a)
end

-- ---- indexing ------------------------------------------------------------------------------

-- per axis {first, last, step, drop} of a key (see the header)
local function parse_key(t, key)
  local nd = t.ndim
  if type(key) ~= "table" then key = { key } end
  if #key > nd then
    raise("index: %d keys for a tensor of %d dimensions %s", #key, nd, shape_str(t.shape))
  end
  local out = {}
  for i = 1, nd do
    local k, d = key[i], t.shape[i]
    local function pos(v, what)
      if math.type(v) ~= "integer" then raise("index: axis %d: %s %s is not an integer", i, what, tostring(v)) end
      local p = v < 0 and d + v + 1 or v
      return p
    end
    if k == nil then
      out[i] = { 1, d, 1, false }
    elseif type(k) == "number" then
      local p = pos(k, "index")
      if p < 1 or p > d then raise("index: %d is out of range for axis %d of size %d %s", k, i, d, shape_str(t.shape)) end
      out[i] = { p, p, 1, true }
    elseif type(k) == "table" then
      local first = k[1] == nil and 1 or pos(k[1], "first")
      local last = k[2] == nil and (k[1] == nil and d or first) or pos(k[2], "last")
      local step = k[3] or 1
      if math.type(step) ~= "integer" or step < 1 then raise("index: axis %d: step %s, expected an integer >= 1", i, tostring(step)) end
      if first < 1 or last > d or last < first - 1 then
        raise("index: axis %d: range {%s, %s} is outside 1..%d %s", i, tostring(k[1] or 1), tostring(k[2] or d), d,
          shape_str(t.shape))
      end
      out[i] = { first, last, step, false }
    elseif is_tensor(k) then
      raise("index: tensor keys are not supported; use gather")
    else
      raise("index: axis %d: key is a %s, expected a number or a table", i, type(k))
    end
  end
  return out
end

local function every_step(x, i, step) -- every step-th position along axis i (a view)
  local L = x.shape[i]
  local n = (L + step - 1) // step
  local pads = {}
  pads[i] = { 0, n * step - L }
  local s = { table.unpack(x.shape) }
  s[i] = n
  table.insert(s, i + 1, step)
  local r = {}
  r[i + 1] = { 1, 1 }
  return x:pad(pads, 0, true):reshape(s):shrink(r):squeeze(i + 1)
end

local function undo_step(x, i, step, L) -- inverse of every_step, zeros in between
  local s = { table.unpack(x.shape) }
  table.insert(s, i + 1, 1)
  local pads = {}
  pads[i + 1] = { 0, step - 1 }
  local merged = { table.unpack(x.shape) }
  merged[i] = x.shape[i] * step
  local r = {}
  r[i] = { 1, L }
  return x:reshape(s):pad(pads):reshape(merged):shrink(r)
end

function Tensor.getitem(t, key)
  if t.ndim == 0 then raise("index: a 0-d tensor has no axis to index") end
  local spec = parse_key(t, key)
  local ranges, shape = {}, {}
  for i, s in ipairs(spec) do ranges[i] = { s[1], s[2] } end
  local x = t:shrink(ranges)
  for i, s in ipairs(spec) do
    if s[3] > 1 then x = every_step(x, i, s[3]) end
  end
  for i, s in ipairs(spec) do
    if not s[4] then shape[#shape + 1] = x.shape[i] end
  end
  return x:reshape(shape)
end

function Tensor.setitem(t, key, value)
  if t.ndim == 0 then raise("index: a 0-d tensor has no axis to index") end
  local spec = parse_key(t, key)
  local kept, out = {}, {} -- the view's shape with the dropped axes as 1, and without them
  for i, s in ipairs(spec) do
    local L = s[2] - s[1] + 1
    kept[i] = (L + s[3] - 1) // s[3]
    if not s[4] then out[#out + 1] = kept[i] end
  end
  if is_tensor(value) then
    local ok, b = pcall(Tensor.broadcast_shape, "setitem", value.shape, out)
    local same = ok and #b == #out
    for i = 1, #out do same = same and b[i] == out[i] end
    if not same then
      raise("setitem: a value of shape %s does not broadcast to the indexed shape %s", shape_str(value.shape), shape_str(out))
    end
    value = value:cast(t.dtype)
  elseif type(value) == "number" or type(value) == "boolean" then
    value = Tensor.full({}, value, { dtype = t.dtype })
  else
    raise("setitem: the value is a %s, expected a Tensor, a number or a boolean", type(value))
  end
  local function place(v)
    v = v:expand(out):reshape(kept)
    local pads = {}
    for i, s in ipairs(spec) do
      if s[3] > 1 then v = undo_step(v, i, s[3], s[2] - s[1] + 1) end
      pads[i] = { s[1] - 1, t.shape[i] - s[2] }
    end
    return v:pad(pads)
  end
  local new = place(Tensor.full({}, true)):where(place(value), t)
  Tensor.write(t, new)
end

-- ---- gather --------------------------------------------------------------------------------

function Tensor:gather(axis, index)
  if not is_tensor(index) then raise("gather: index is a %s, expected a Tensor", type(index)) end
  if index.dtype.kind ~= "int" and index.dtype.kind ~= "uint" then
    raise("gather: index has dtype %s, expected an integer dtype", tostring(index.dtype))
  end
  local nd = self.ndim
  if nd == 0 then raise("gather: a 0-d tensor has no axis to gather along") end
  if index.ndim ~= nd then
    raise("gather: index %s and tensor %s need the same number of dimensions", shape_str(index.shape), shape_str(self.shape))
  end
  local a = check_axis("gather", axis, nd)
  local ranges = {}
  for i = 1, nd do
    if i ~= a then
      if index.shape[i] > self.shape[i] then
        raise("gather: index %s is larger than the tensor %s on axis %d", shape_str(index.shape), shape_str(self.shape), i)
      end
      ranges[i] = { 1, index.shape[i] }
    end
  end
  local n = self.shape[a]
  if index:numel() > 0 then -- index values are data: checking them runs a kernel, as PyTorch's check
    local lo, hi = index:min(), index:max()
    Tensor.realize_all({ lo, hi })
    lo, hi = lo:item(), hi:item()
    if lo < 1 or hi > n then
      raise("gather: index %d is out of range for axis %d of size %d (tensor %s)", lo < 1 and lo or hi, a, n, shape_str(self.shape))
    end
  end
  local xe = self:shrink(ranges):unsqueeze(a)          -- (..., 1, n, ...)
  local ie = index:unsqueeze(a + 1)                     -- (..., m, 1, ...)
  local s = {}
  for i = 1, nd + 1 do s[i] = i == a + 1 and n or 1 end
  local onehot = ie:eq(Tensor.arange(1, n + 1):reshape(s)) -- (..., m, n, ...)
  local zero = 0
  if self.dtype.kind == "bool" then zero = false end
  local picked = onehot:where(xe, zero)
  return Tensor.reduce_prim(self.dtype.kind == "bool" and "MAX" or "ADD", picked, { a }, false)
end

return Tensor
