-- Gradient rules of backward() (luagrad.autograd): one function per primitive op of the tensor
-- graph, keyed by the op. A rule gets g, the gradient of the node's output, then the output x and
-- the node's sources, all as Tensors (x.uop.arg is the node's arg), and returns the gradient of
-- each source in order, each of that source's shape and dtype; nil where none flows (a source
-- that cannot carry gradient, or a gradient that is zero everywhere). The gradients are lazy
-- graphs like any other, so they fuse and schedule with the rest.
-- No rule is needed for ops whose output is never float (comparisons, integer and bit ops), for
-- leaves (BUFFER, CONST, IOTA), or for DETACH: the walk stops at those.
local Tensor = require "luagrad.tensor"

local LN2 = math.log(2)
local function reduce(...) return Tensor.reduce_prim(...) end -- looked up when used: any load order

-- 0-based axes as the 1-based list the Tensor methods take
local function axes1(axes)
  local t = {}
  for i, a in ipairs(axes) do t[i] = a + 1 end
  return t
end

return {
  -- elementwise: operands already share one shape and dtype
  ADD = function(g) return g, g end,
  SUB = function(g) return g, -g end,
  MUL = function(g, _, a, b) return g * b, g * a end,
  FDIV = function(g, x, _, b) return g / b, -g * x / b end,                -- d(a/b)/db = -(a/b)/b
  NEG = function(g) return -g end,
  RECIPROCAL = function(g, x) return -g * x * x end,
  SQRT = function(g, x) return g / (2 * x) end,
  EXP2 = function(g, x) return g * x * LN2 end,
  LOG2 = function(g, _, a) return g / (a * LN2) end,
  SIN = function(g, _, a) return g * a:cos() end,
  -- d(a^b)/da = b a^(b-1) (0 where b = 0); d(a^b)/db = a^b ln a (0 where a = 0 and b >= 0), as PyTorch
  POW = function(g, x, a, b)
    return b:eq(0):where(0, g * b * a:pow(b - 1)), a:eq(0):logical_and(b:ge(0)):where(0, g * x * a:log())
  end,
  -- ties give each side half (as torch.maximum; so relu = maximum(x, 0) has slope 1/2 at 0)
  MAX = function(g, _, a, b)
    local half = g * 0.5
    return a:gt(b):where(g, a:eq(b):where(half, 0)), b:gt(a):where(g, a:eq(b):where(half, 0))
  end,
  TRUNC = function() end, -- piecewise constant: zero
  CAST = function(g, _, a)
    if a.dtype.kind == "float" then return g:cast(a.dtype) end
  end,
  WHERE = function(g, _, c) return nil, c:where(g, 0), c:where(0, g) end,

  -- reductions keep the reduced axes with size 1: arg {op, axis...} (axes 0-based)
  REDUCE_AXIS = function(g, x, a)
    local op, axes, shape = x.uop.arg[1], { table.unpack(x.uop.arg, 2) }, a.shape
    local ge = g:expand(shape)
    if op == "ADD" then return ge end
    local xe = x:expand(shape)
    if op == "MAX" then -- ties share the gradient equally (as tinygrad)
      local hit = a:eq(xe):cast(g.dtype)
      return ge * hit / reduce("ADD", hit, axes, true):expand(shape)
    end
    -- MUL: the product of the others; x / a unless a = 0, where it is the product of the
    -- nonzero others when a is the only zero and 0 otherwise
    local zero = a:eq(0)
    local others = reduce("MUL", zero:where(1, a), axes, true)
    local one = reduce("ADD", zero:cast(g.dtype), axes, true):eq(1)
    return ge * zero:where(one:where(others, 0):expand(shape), xe / a)
  end,

  -- movement: the inverse view of g; EXPAND sums over the axes it broadcast
  RESHAPE = function(g, _, a) return g:reshape(a.shape) end,
  PERMUTE = function(g, x)
    local inv = {}
    for i, p in ipairs(x.uop.arg) do inv[p + 1] = i end
    return g:permute(inv)
  end,
  EXPAND = function(g, x, a)
    local axes, from, to = {}, a.shape, x.shape
    for i = 1, #to do
      if from[i] ~= to[i] then axes[#axes + 1] = i - 1 end
    end
    return g:sum(axes1(axes), true)
  end,
  PAD = function(g, x, a)
    local arg, ranges = x.uop.arg, {}
    for i, d in ipairs(a.shape) do ranges[i] = { arg[2 * i - 1] + 1, arg[2 * i - 1] + d } end
    return g:shrink(ranges)
  end,
  SHRINK = function(g, x, a)
    local arg, pads = x.uop.arg, {}
    for i, d in ipairs(a.shape) do pads[i] = { arg[2 * i - 1], d - arg[2 * i] } end
    return g:pad(pads)
  end,
  FLIP = function(g, x)
    local axes = {}
    for i, f in ipairs(x.uop.arg) do
      if f ~= 0 then axes[#axes + 1] = i end
    end
    return g:flip(axes)
  end,
  CONTIGUOUS = function(g) return g end,

  -- a composite op (Tensor.func): the gradient its definer registered in Tensor.func_grads; none
  -- flows through the graph of its value
  FUNCTION = function(g, x, _, ...)
    local arg = x.uop.arg
    local name = type(arg) == "table" and arg[1] or arg
    local rule = Tensor.func_grads[name]
    if not rule then error("backward: no gradient for the function " .. tostring(name)) end
    return nil, rule(g, x, type(arg) == "table" and { table.unpack(arg, 2) } or {}, ...)
  end,
}
