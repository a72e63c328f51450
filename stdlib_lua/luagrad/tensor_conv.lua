-- Convolution and pooling of luagrad.tensor, as tinygrad builds them: one "pool" view of the input
-- (every kernel position an axis, made of pad/reshape/expand/shrink/permute, no copies) and one
-- reduce, so that a forward schedules to a single kernel. conv2d and conv_transpose2d bring their
-- own gradients (Tensor.func). Layouts are PyTorch's: inputs (N, C, H, W) (conv1d (N, C, L)),
-- conv weights (Cout, Cin/groups, kh, kw), conv_transpose2d weights (Cin, Cout/groups, kh, kw).
local Tensor = require "luagrad.tensor"
local A = require "luagrad.tensor_nn_args"

local shape_str, is_tensor, raise = Tensor.shape_str, Tensor.is_tensor, Tensor.raise
local check, ceildiv, options, tuple, range, concat = A.check, A.ceildiv, A.options, A.tuple, A.range, A.concat

-- pads (or, where negative, shrinks) the last #pairs axes by {before, after} pairs
local function pad_last(x, pairs, value)
  local lead, pads, cut, any_cut = x.ndim - #pairs, {}, {}, false
  for j, p in ipairs(pairs) do
    local i, d = lead + j, x.shape[lead + j]
    pads[i] = { math.max(p[1], 0), math.max(p[2], 0) }
    cut[i] = { 1 + math.max(-p[1], 0), d - math.max(-p[2], 0) }
    any_cut = any_cut or p[1] < 0 or p[2] < 0
  end
  if any_cut then x = x:shrink(cut) end
  return x:pad(pads, value)
end

-- The sliding windows of the last #k axes as new axes: (..., o1..on, k1..kn), as tinygrad's
-- Tensor._pool. Overlapping windows (k > s) or dilation repeat the input with expand+reshape,
-- so that shrinks and reshapes line every window up on its own axis.
local function pool(x, k, s, d)
  local n = #k
  local lead = x.ndim - n
  local noop = { table.unpack(x.shape, 1, lead) }
  local whole = {}
  for i = 1, lead do whole[i] = {} end
  local i_, o_, overlap = {}, {}, false
  for j = 1, n do
    i_[j] = x.shape[lead + j]
    o_[j] = ceildiv(i_[j] - d[j] * (k[j] - 1), s[j])
    overlap = overlap or k[j] > s[j] or d[j] ~= 1
  end
  local function ranges(f)
    local r = { table.unpack(whole) }
    for j = 1, n do
      for _, v in ipairs(f(j)) do r[#r + 1] = v end
    end
    return r
  end
  local function sizes(f)
    local r = { table.unpack(noop) }
    for j = 1, n do
      for _, v in ipairs(f(j)) do r[#r + 1] = v end
    end
    return r
  end
  local order = range(1, lead)
  if overlap then
    local e, reps = {}, {} -- e: each repeat of the axis is i*f + d long
    for i = 1, lead do reps[i] = 1 end
    for j = 1, n do
      local f = o_[j] * s[j] > i_[j] - d[j] * (k[j] - 1) and 2 or 1
      e[j] = i_[j] * f + d[j]
      reps[lead + j] = ceildiv(k[j] * e[j], i_[j])
    end
    x = x:tile(reps)
    x = x:shrink(ranges(function(j) return { { 1, k[j] * e[j] } } end)):reshape(sizes(function(j) return { k[j], e[j] } end))
    x = x:shrink(ranges(function(j) return { { 1, k[j] }, { 1, o_[j] * s[j] } } end))
      :reshape(sizes(function(j) return { k[j], o_[j], s[j] } end))
    x = x:shrink(ranges(function(j) return { { 1, k[j] }, { 1, o_[j] }, { 1, 1 } } end))
      :reshape(sizes(function(j) return { k[j], o_[j] } end))
    for j = 1, n do order[#order + 1] = lead + 2 * j end
    for j = 1, n do order[#order + 1] = lead + 2 * j - 1 end
    return x:permute(order)
  end
  -- windows no longer than the stride: no repeat needed
  local pads = {}
  for j = 1, n do pads[lead + j] = { 0, math.max(0, o_[j] * s[j] - i_[j]) } end
  x = x:pad(pads):shrink(ranges(function(j) return { { 1, o_[j] * s[j] } } end))
  x = x:reshape(sizes(function(j) return { o_[j], s[j] } end))
  x = x:shrink(ranges(function(j) return { { 1, o_[j] }, { 1, k[j] } } end))
  for j = 1, n do order[#order + 1] = lead + 2 * j - 1 end
  for j = 1, n do order[#order + 1] = lead + 2 * j end
  return x:permute(order)
end

-- an error naming the sizes when a (dilated) kernel is larger than the padded input
local function check_windows(what, x, k, s, d, pads)
  local lead = x.ndim - #k
  for j = 1, #k do
    local span = d[j] * (k[j] - 1) + 1
    local size = x.shape[lead + j] + pads[j][1] + pads[j][2]
    if span > size then
      raise("%s: the kernel spans %d (size %d, dilation %d) on axis %d, more than the padded input's %d (input %s)",
        what, span, k[j], d[j], lead + j, size, shape_str(x.shape))
    end
  end
end

local function symmetric(p)
  local pairs = {}
  for j, v in ipairs(p) do pairs[j] = { v, v } end
  return pairs
end

-- ---- convolution ---------------------------------------------------------------------------

-- an nsp-dimensional convolution with {before, after} pads per spatial axis
local function conv(what, x, w, b, nsp, stride, dilation, pads, groups)
  check(what, x, "the input")
  check(what, w, "the weight")
  if x.ndim ~= nsp + 2 or w.ndim ~= nsp + 2 then
    raise("%s: input %s and weight %s need %d dimensions each", what, shape_str(x.shape), shape_str(w.shape), nsp + 2)
  end
  local bs, cin_, cout, cin = x.shape[1], x.shape[2], w.shape[1], w.shape[2]
  if groups * cin ~= cin_ then
    raise("%s: input %s has %d channels, but weight %s with groups %d expects %d", what, shape_str(x.shape), cin_,
      shape_str(w.shape), groups, groups * cin)
  end
  if cout % groups ~= 0 then
    raise("%s: weight %s has %d output channels, not a multiple of groups %d", what, shape_str(w.shape), cout, groups)
  end
  if b ~= nil and (not is_tensor(b) or b.ndim ~= 1 or b.shape[1] ~= cout) then
    raise("%s: bias %s does not match the %d output channels of weight %s", what,
      is_tensor(b) and shape_str(b.shape) or type(b), cout, shape_str(w.shape))
  end
  local k = { table.unpack(w.shape, 3) }
  check_windows(what, x, k, stride, dilation, pads)
  local p = pool(pad_last(x, pads), k, stride, dilation) -- (bs, cin_, o..., k...)
  local rcout = cout // groups
  local o = { table.unpack(p.shape, 3, 2 + nsp) }
  local ones = {}
  for j = 1, nsp do ones[j] = 1 end
  p = p:reshape(concat({ bs, groups, cin, 1 }, o, k)):expand(concat({ bs, groups, cin, rcout }, o, k))
  p = p:permute(concat({ 1, 2, 4 }, range(5, 4 + nsp), { 3 }, range(5 + nsp, 4 + 2 * nsp)))
  local wr = w:reshape(concat({ 1, groups, rcout }, ones, { cin }, k))
  local r = (p * wr):sum(range(-1 - nsp, -1)):reshape(concat({ bs, cout }, o))
  if b then r = r + b:reshape(concat({ 1, cout }, ones)) end
  return r
end

local CONV = { "stride", "padding", "dilation", "groups" }
local function conv_opts(what, opts, nsp, names)
  opts = options(what, opts, names or CONV)
  local groups = opts.groups or 1
  if math.type(groups) ~= "integer" or groups < 1 then raise("%s: groups is %s, expected an integer >= 1", what, tostring(groups)) end
  return tuple(what, "stride", opts.stride or 1, nsp, 1), tuple(what, "dilation", opts.dilation or 1, nsp, 1),
    tuple(what, "padding", opts.padding or 0, nsp, 0), groups
end

-- x:conv2d(w [, b] [, {stride =, padding =, dilation =, groups =}]): x (N, Cin, H, W), w (Cout,
-- Cin/groups, kh, kw); stride, padding, dilation an integer or {h, w}
-- Its gradient is its own (Tensor.func): the input's is a transposed convolution, which makes
-- cleaner kernels than differentiating the pool view (whose gradient sums mostly-empty repeats).
function Tensor:conv2d(w, b, opts)
  if opts == nil and type(b) == "table" and not is_tensor(b) then b, opts = nil, b end
  local stride, dilation, padding, groups = conv_opts("conv2d", opts, 2)
  local r = conv("conv2d", self, w, nil, 2, stride, dilation, symmetric(padding), groups)
  local params = { stride[1], stride[2], dilation[1], dilation[2], padding[1], padding[2], groups }
  r = Tensor.func("conv2d", params, r, self, w)
  if b ~= nil then
    if not is_tensor(b) or b.ndim ~= 1 or b.shape[1] ~= w.shape[1] then
      raise("conv2d: bias %s does not match the %d output channels of weight %s",
        is_tensor(b) and shape_str(b.shape) or type(b), w.shape[1], shape_str(w.shape))
    end
    r = r + b:reshape(1, w.shape[1], 1, 1)
  end
  return r
end

-- the gradient of a conv2d's weight (Cout, Cin/groups, k...) for input x and output gradient g
-- (N, Cout, oh, ow): the windows of x times g, summed over the batch and the positions (windows
-- past g's size, which a transposed convolution's output padding makes, left out). One kernel:
-- its innermost loop walks a row of g and of a window, both contiguous, as masked vector lanes.
local function conv2d_dw(x, g, k, stride, dilation, padding, groups)
  local bs, cout, cin, o = x.shape[1], g.shape[2], x.shape[2] // groups, { g.shape[3], g.shape[4] }
  local rcout = cout // groups
  local p = pool(pad_last(x, symmetric(padding)), k, stride, dilation) -- (bs, groups*cin, oh', ow', kh, kw)
  if p.shape[3] ~= o[1] or p.shape[4] ~= o[2] then p = p:shrink({ {}, {}, { 1, o[1] }, { 1, o[2] }, {}, {} }) end
  local gr = g:reshape(bs, groups, rcout, 1, o[1], o[2], 1, 1)
  local pw = p:reshape(bs, groups, 1, cin, o[1], o[2], k[1], k[2])
  return (gr * pw):sum({ 1, 5, 6 }):reshape(cout, cin, k[1], k[2])
end

local function conv_params(params)
  return { params[1], params[2] }, { params[3], params[4] }, { params[5], params[6] }, params[7]
end

-- conv2d's gradients: g (N, Cout, oh, ow) back to x (a transposed convolution, its output padded
-- to x's size) and to w
Tensor.func_grads.conv2d = function(g, _, params, x, w)
  local stride, dilation, padding, groups = conv_params(params)
  local k, o = { w.shape[3], w.shape[4] }, { g.shape[3], g.shape[4] }
  local outpad = {}
  for j = 1, 2 do
    outpad[j] = x.shape[2 + j] - ((o[j] - 1) * stride[j] - 2 * padding[j] + dilation[j] * (k[j] - 1) + 1)
  end
  local dx = g:conv_transpose2d(w, nil, { stride = stride, padding = padding, output_padding = outpad,
    dilation = dilation, groups = groups })
  return dx, conv2d_dw(x, g, k, stride, dilation, padding, groups)
end

-- x:conv1d(w [, b] [, opts]): x (N, Cin, L), w (Cout, Cin/groups, k)
function Tensor:conv1d(w, b, opts)
  if opts == nil and type(b) == "table" and not is_tensor(b) then b, opts = nil, b end
  local stride, dilation, padding, groups = conv_opts("conv1d", opts, 1)
  return conv("conv1d", self, w, b, 1, stride, dilation, symmetric(padding), groups)
end

-- x:conv_transpose2d(w [, b] [, {stride, padding, output_padding, dilation, groups}]): the
-- gradient of conv2d with respect to its input; w (Cin, Cout/groups, kh, kw). As tinygrad: the
-- input spread out by the stride (zeros between), convolved with the flipped, transposed weight.
-- Its gradient is its own (Tensor.func), without the spread input's zeros.
function Tensor:conv_transpose2d(w, b, opts)
  local what = "conv_transpose2d"
  if opts == nil and type(b) == "table" and not is_tensor(b) then b, opts = nil, b end
  check(what, self, "the input")
  check(what, w, "the weight")
  local stride, dilation, padding, groups = conv_opts(what, opts, 2, { "stride", "padding", "output_padding", "dilation", "groups" })
  local outpad = tuple(what, "output_padding", (opts or {}).output_padding or 0, 2, 0)
  if self.ndim ~= 4 or w.ndim ~= 4 then
    raise("%s: input %s and weight %s need 4 dimensions each", what, shape_str(self.shape), shape_str(w.shape))
  end
  local cin = w.shape[1]
  if cin % groups ~= 0 then
    raise("%s: weight %s has %d input channels, not a multiple of groups %d", what, shape_str(w.shape), cin, groups)
  end
  if self.shape[2] ~= cin then
    raise("%s: input %s has %d channels, but weight %s with groups %d expects %d", what, shape_str(self.shape),
      self.shape[2], shape_str(w.shape), groups, cin)
  end
  for j = 1, 2 do
    if outpad[j] >= math.max(stride[j], dilation[j]) then
      raise("%s: output_padding %d must be smaller than stride %d or dilation %d", what, outpad[j], stride[j], dilation[j])
    end
  end
  local k = { w.shape[3], w.shape[4] }
  local rcout = w.shape[2]
  -- (Cin, Cout/g, kh, kw) -> (g, Cin/g, Cout/g, kh, kw) -> (Cout, Cin/g, kh, kw), flipped
  local wt = w:reshape(groups, cin // groups, rcout, k[1], k[2]):transpose(2, 3):flip(4, 5)
    :reshape(groups * rcout, cin // groups, k[1], k[2])
  local x = self
  if stride[1] > 1 or stride[2] > 1 then
    local n, c, h, wd = table.unpack(x.shape)
    x = x:reshape(n, c, h, 1, wd, 1):pad({ nil, nil, nil, { 0, stride[1] - 1 }, nil, { 0, stride[2] - 1 } })
    x = x:reshape(n, c, h * stride[1], wd * stride[2])
    x = x:shrink({ {}, {}, { 1, h * stride[1] - (stride[1] - 1) }, { 1, wd * stride[2] - (stride[2] - 1) } })
  end
  local pads = {}
  for j = 1, 2 do
    local full = (k[j] - 1) * dilation[j]
    pads[j] = { full - padding[j], full - padding[j] + outpad[j] }
  end
  local r = conv(what, x, wt, nil, 2, { 1, 1 }, dilation, pads, groups)
  local cout = groups * rcout
  r = Tensor.func("conv_transpose2d", { stride[1], stride[2], dilation[1], dilation[2], padding[1], padding[2], groups },
    r, self, w)
  if b ~= nil then
    if not is_tensor(b) or b.ndim ~= 1 or b.shape[1] ~= cout then
      raise("%s: bias %s does not match the %d output channels of weight %s", what,
        is_tensor(b) and shape_str(b.shape) or type(b), cout, shape_str(w.shape))
    end
    r = r + b:reshape(1, cout, 1, 1)
  end
  return r
end

-- conv_transpose2d's gradients: it is the adjoint of x -> x:conv2d(w) (w read as a conv2d weight
-- (Cin, Cout/groups, kh, kw)), so g (N, Cout, oh, ow) goes back to x as g:conv2d(w) and to w as
-- conv2d's weight gradient with g as the input and x as the output gradient. A conv2d of g has
-- one more row or column than x where the output padding is not below the stride: cut off.
Tensor.func_grads.conv_transpose2d = function(g, _, params, x, w)
  local stride, dilation, padding, groups = conv_params(params)
  local dx = g:conv2d(w, nil, { stride = stride, padding = padding, dilation = dilation, groups = groups })
  local h, wd = x.shape[3], x.shape[4]
  if dx.shape[3] ~= h or dx.shape[4] ~= wd then dx = dx:shrink({ {}, {}, { 1, h }, { 1, wd } }) end
  return dx, conv2d_dw(g, x, { w.shape[3], w.shape[4] }, stride, dilation, padding, groups)
end

-- ---- pooling -------------------------------------------------------------------------------

local function pool_opts(what, x, kernel, opts, names)
  check(what, x, "the input")
  if x.ndim < 2 then raise("%s: the input %s needs at least 2 dimensions", what, shape_str(x.shape)) end
  opts = options(what, opts, names or { "stride", "padding", "dilation" })
  local k = tuple(what, "kernel", kernel or 2, 2, 1)
  local s = tuple(what, "stride", opts.stride or k, 2, 1)
  local d = tuple(what, "dilation", opts.dilation or 1, 2, 1)
  local p = tuple(what, "padding", opts.padding or 0, 2, 0)
  for j = 1, 2 do
    if 2 * p[j] > k[j] then raise("%s: padding %d is more than half the kernel %d", what, p[j], k[j]) end
  end
  local pads = symmetric(p)
  check_windows(what, x, k, s, d, pads)
  return k, s, d, pads
end

local function lowest(d)
  if d.kind == "float" then return -math.huge end
  if d.kind == "bool" then return false end
  if d.kind == "uint" then return 0 end
  return -(1 << (8 * d.itemsize - 1))
end

-- x:max_pool2d([kernel] [, {stride =, padding =, dilation =}]): the largest value of each window
-- of the last two axes (kernel 2 and stride = kernel unless given; padding counts as -inf)
function Tensor:max_pool2d(kernel, opts)
  local k, s, d, pads = pool_opts("max_pool2d", self, kernel, opts)
  return pool(pad_last(self, pads, lowest(self.dtype)), k, s, d):max({ -2, -1 })
end

-- x:avg_pool2d([kernel] [, {stride =, padding =, count_include_pad = true}]): the mean of each
-- window (padding counts as zeros unless count_include_pad is false, as PyTorch)
function Tensor:avg_pool2d(kernel, opts)
  local k, s, d, pads = pool_opts("avg_pool2d", self, kernel, opts, { "stride", "padding", "dilation", "count_include_pad" })
  local sum = pool(pad_last(self, pads), k, s, d):sum({ -2, -1 })
  if (opts or {}).count_include_pad == false then
    local n = pool(pad_last(Tensor.ones(self.shape[self.ndim - 1], self.shape[self.ndim]), pads), k, s, d):sum({ -2, -1 })
    return sum / n
  end
  return sum / (k[1] * k[2])
end
