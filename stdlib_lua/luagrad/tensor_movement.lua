-- Movement ops of luagrad.tensor: views that never copy by themselves. Axes are 1-based,
-- negative from the end; ranges in shrink are 1-based and inclusive.
local core = require "luagrad.core"
local Tensor = require "luagrad.tensor"


local wrap, shape_str, raise = Tensor.wrap, Tensor.shape_str, Tensor.raise

-- a 1-based (or negative) axis of an ndim-dimensional tensor, as a 0-based one
function Tensor.axis(ax, ndim, what)
  if math.type(ax) ~= "integer" or ax == 0 or ax > ndim or ax < -ndim then
    raise("%s: axis %s is out of range for %d dimensions (use 1..%d or -%d..-1)", what, tostring(ax), ndim,
      ndim, ndim)
  end
  return ax > 0 and ax - 1 or ndim + ax
end
local axis = Tensor.axis

local function sizes(...)
  local a = { ... }
  return type(a[1]) == "table" and { table.unpack(a[1]) } or a
end

local VIEW = { RESHAPE = true, PERMUTE = true, EXPAND = true, SHRINK = true }

-- a movement op; reshape, permute, expand and shrink give views (Tensor.view_of), as does a pad
-- with view = true (strided indexing: the padding is cut off again)
local function mop(t, op, arg, view)
  local r = wrap(core.uop(op, t.dtype, { t.uop }, arg))
  return (VIEW[op] or view) and Tensor.view_of(r, t, op, arg) or r
end

-- reshape(2, 3) or reshape({2, -1}): one size may be -1 and is inferred
function Tensor:reshape(...)
  local s, shape, infer = sizes(...), self.shape, nil
  local n = Tensor.shape_numel(shape)
  local known = 1
  for i, d in ipairs(s) do
    if d == -1 and not infer then
      infer = i
    elseif math.type(d) ~= "integer" or d < 0 then
      raise("reshape: size %d is %s in %s", i, tostring(d), shape_str(s))
    else
      known = known * d
    end
  end
  if infer then
    if known == 0 or n % known ~= 0 then
      raise("reshape: cannot infer -1 in %s for %d elements %s", shape_str(s), n, shape_str(shape))
    end
    s[infer] = n // known
  end
  local same = #s == #shape
  for i = 1, #s do same = same and s[i] == shape[i] end
  if same then return self end
  local ok, err = pcall(mop, self, "RESHAPE", s)
  if not ok then raise("reshape: " .. (tostring(err):gsub("^.-RESHAPE: ", ""))) end
  return err
end

function Tensor:permute(...)
  local order, nd = sizes(...), self.ndim
  if #order ~= nd then raise("permute: %d axes given for %d dimensions", #order, nd) end
  local arg, seen = {}, {}
  for i, a in ipairs(order) do
    arg[i] = axis(a, nd, "permute")
    if seen[arg[i]] then raise("permute: axis %d appears twice", arg[i] + 1) end
    seen[arg[i]] = true
  end
  return mop(self, "PERMUTE", arg)
end

function Tensor:transpose(a, b)
  local nd = self.ndim
  local order = {}
  for i = 1, nd do order[i] = i end
  a, b = axis(a or -2, nd, "transpose") + 1, axis(b or -1, nd, "transpose") + 1
  order[a], order[b] = order[b], order[a]
  return self:permute(order)
end

-- expand(3, 4): size-1 axes grow; -1 keeps a size; new leading axes may be added
function Tensor:expand(...)
  local s, shape = sizes(...), self.shape
  if #s < #shape then
    raise("expand: %s has fewer dimensions than the tensor %s", shape_str(s), shape_str(shape))
  end
  local lead = #s - #shape
  local padded = {}
  for i = 1, #s do
    local old = i > lead and shape[i - lead] or 1
    local new = s[i] == -1 and old or s[i]
    if old ~= new and old ~= 1 then
      raise("expand: axis %d has size %d and cannot become %d (tensor %s to %s)", i, old, new,
        shape_str(shape), shape_str(s))
    end
    padded[i], s[i] = old, new
  end
  local t = lead > 0 and self:reshape(padded) or self
  local same = true
  for i = 1, #s do same = same and s[i] == padded[i] end
  return same and t or mop(t, "EXPAND", s)
end

function Tensor:flatten(first, last)
  local nd = self.ndim
  if nd == 0 then return self:reshape(1) end
  first, last = axis(first or 1, nd, "flatten") + 1, axis(last or -1, nd, "flatten") + 1
  local s, n = {}, 1
  for i = 1, nd do
    if i < first or i > last then s[#s + 1] = self.shape[i] else n = n * self.shape[i] end
    if i == last then s[#s + 1] = n end
  end
  return self:reshape(s)
end

function Tensor:unsqueeze(ax)
  local nd = self.ndim
  local a = axis(ax, nd + 1, "unsqueeze") + 1
  local s = { table.unpack(self.shape) }
  table.insert(s, a, 1)
  return self:reshape(s)
end

function Tensor:squeeze(ax)
  local s = {}
  if ax == nil then
    for _, d in ipairs(self.shape) do
      if d ~= 1 then s[#s + 1] = d end
    end
  else
    local a = axis(ax, self.ndim, "squeeze") + 1
    for i, d in ipairs(self.shape) do
      if i ~= a or d ~= 1 then s[#s + 1] = d end
    end
  end
  return self:reshape(s)
end

-- pad({{before, after}, ...} [, value]): one pair per axis from the first (missing: no padding)
function Tensor:pad(pads, value, view)
  local arg, nd = {}, self.ndim
  if type(pads) ~= "table" or #pads > nd then
    raise("pad: expected at most %d {before, after} pairs for the tensor %s, got %s", nd, shape_str(self.shape),
      type(pads) == "table" and #pads .. " pairs" or "a " .. type(pads))
  end
  for i = 1, nd do
    local p = pads[i] or { 0, 0 } -- a missing pair ({} or nil) pads nothing, as shrink keeps a whole axis
    if p[1] == nil and p[2] == nil then p = { 0, 0 } end
    if math.type(p[1]) ~= "integer" or math.type(p[2]) ~= "integer" or p[1] < 0 or p[2] < 0 then
      raise("pad: axis %d needs {before, after} integers >= 0", i)
    end
    arg[2 * i - 1], arg[2 * i] = p[1], p[2]
  end
  local padded = mop(self, "PAD", arg, view)
  if value == nil or value == 0 then return padded end
  local inside = mop(Tensor.full(self.shape, true), "PAD", arg)
  return inside:where(padded, value)
end

-- shrink({{first, last}, ...}): 1-based inclusive ranges per axis ({} or nil: the whole axis)
function Tensor:shrink(ranges)
  local arg = {}
  for i, d in ipairs(self.shape) do
    local r = ranges[i] or {}
    local first, last = r[1] or 1, r[2] or d
    if first < 0 then first = d + first + 1 end
    if last < 0 then last = d + last + 1 end
    if first < 1 or last > d or first > last + 1 then
      raise("shrink: axis %d: {%d, %d} is outside 1..%d", i, r[1] or 1, r[2] or d, d)
    end
    arg[2 * i - 1], arg[2 * i] = first - 1, last
  end
  return mop(self, "SHRINK", arg)
end

function Tensor:flip(...)
  local axes, arg = sizes(...), {}
  for i = 1, self.ndim do arg[i] = 0 end
  for _, a in ipairs(axes) do arg[axis(a, self.ndim, "flip") + 1] = 1 end
  return mop(self, "FLIP", arg)
end

function Tensor:contiguous() return wrap(core.uop("CONTIGUOUS", self.dtype, { self.uop })) end

return Tensor
