-- luagrad.nn: layers as PyTorch's torch.nn has them, over the functional ops of tensor_conv.lua
-- and tensor_nn.lua.
-- A layer is a Lua table of tensors (its parameters and buffers) whose metatable has __call
-- (the forward); lg.nn.Linear(3, 4) makes one. Any Lua table of layers is a model: parameters()
-- and state_dict() walk it. Initialization is PyTorch's (weights kaiming_uniform with a = sqrt(5),
-- biases uniform(+-1/sqrt(fan_in)), norms ones and zeros, Embedding normal), drawn from the
-- seeded generator (lg.manual_seed); parameters are realized and have requires_grad = true.
--
-- Training mode is one flag for everything, as tinygrad: lg.Tensor.training (unset, so false, by default).
-- While it is true, Dropout drops and BatchNorm2d normalizes with the batch statistics and
-- updates its running statistics (momentum 0.1, the unbiased batch variance, as PyTorch); while
-- false, BatchNorm2d uses the running statistics. The running-statistics update is lazy: the next
-- optimizer step (lg.optim) realizes it with the parameters, in the same schedule.
local Tensor = require "luagrad.tensor"
require "luagrad.tensor_conv"
require "luagrad.tensor_nn"

local is_tensor, shape_str = Tensor.is_tensor, Tensor.shape_str

local nn = {}

-- ---- walking models ------------------------------------------------------------------------

-- integer keys first, in order, then string keys sorted
local function before(a, b)
  local ia, ib = math.type(a) == "integer", math.type(b) == "integer"
  if ia ~= ib then return ia end
  return a < b
end

-- calls f(name, tensor) for every tensor in obj, depth first in key order; keys starting with
-- "_" are skipped; a table shared by two keys is walked under both, a cycle once
local function walk(obj, prefix, f, seen)
  if seen[obj] then return end
  seen[obj] = true -- on the current path
  local keys = {}
  for k, v in pairs(obj) do
    local named = (type(k) == "string" and k:sub(1, 1) ~= "_") or math.type(k) == "integer"
    if named and type(v) == "table" then keys[#keys + 1] = k end
  end
  table.sort(keys, before)
  for _, k in ipairs(keys) do
    local v, name = obj[k], prefix .. tostring(k)
    if is_tensor(v) then f(name, v) else walk(v, name .. ".", f, seen) end
  end
  seen[obj] = nil
end

local function check_model(what, model)
  if type(model) ~= "table" or is_tensor(model) then
    error(("nn.%s: expected a table of layers, got a %s"):format(what, is_tensor(model) and "Tensor" or type(model)), 3)
  end
end

-- nn.parameters(model) -> {Tensor}: the tensors with requires_grad, each once, in key order
function nn.parameters(model)
  check_model("parameters", model)
  local out, seen = {}, {}
  walk(model, "", function(_, t)
    if t.requires_grad and not seen[t] then
      seen[t] = true
      out[#out + 1] = t
    end
  end, {})
  return out
end

-- nn.state_dict(model) -> {name = Tensor}: every tensor (parameters and buffers such as
-- running_mean), named by its path of keys joined with "." ("layers.1.weight"); a tensor
-- reached by two paths is there under both names
function nn.state_dict(model)
  check_model("state_dict", model)
  local out = {}
  walk(model, "", function(name, t) out[name] = t end, {})
  return out
end

-- ---- lazy buffer updates -------------------------------------------------------------------

-- tensors with a lazy update not yet realized, in the order of their first update (so that
-- every step realizes them in one order, and schedules alike); `queued` is the set of them
local pending, queued = {}, {}
local function queue(t)
  if not queued[t] then pending[#pending + 1], queued[t] = t, true end
end

local function realized(t)
  local u = t.uop
  return u.op == "BUFFER" or (u.op == "RESHAPE" and u.src[1].op == "BUFFER")
end

-- nn.take_pending() -> {Tensor}: the buffers updated lazily since the last call (what an
-- optimizer step realizes along with the parameters)
function nn.take_pending()
  local list = pending
  pending, queued = {}, {}
  return list
end

-- ---- layer classes -------------------------------------------------------------------------

-- the message of an error without its "file:line: " prefix
local function bare(msg) return (msg:gsub("^[^\n:]+:%d+: ", "")) end

-- a class: nn.Name(...) calls new(self, ...) on a fresh instance; calling an instance runs
-- forward, and an error from it is raised again at the caller with the layer's name
local function class(name, new, forward)
  local C = { __name = "luagrad.nn." .. name }
  C.__index = C
  C.forward = forward
  C.__call = function(self, ...)
    local ok, r = pcall(forward, self, ...)
    if not ok then error(type(r) == "string" and (name .. ": " .. bare(r)) or r, 2) end
    return r
  end
  C.__tostring = function(self) return name .. "(" .. (rawget(self, "_args") or "") .. ")" end
  return setmetatable(C, { __call = function(_, ...)
    local self = setmetatable({}, C)
    local ok, err = pcall(new, self, ...)
    if not ok then error(type(err) == "string" and bare(err) or err, 2) end
    return self
  end })
end

local function fail(what, fmt, ...) error(what .. ": " .. fmt:format(...), 0) end

local function count(what, name, v, lo)
  if math.type(v) ~= "integer" or v < lo then fail(what, "%s is %s, expected an integer >= %d", name, tostring(v), lo) end
  return v
end

local function pair(what, name, v, lo)
  local t = type(v) == "table" and v or { v, v }
  if #t ~= 2 then fail(what, "%s has %d values, expected 2", name, #t) end
  count(what, name, t[1], lo)
  count(what, name, t[2], lo)
  return { t[1], t[2] }
end

local function uniform(shape, bound) return Tensor.rand(shape) * (2 * bound) - bound end

-- realizes each tensor into a buffer of its own (a realize_all of two equal graphs, such as a
-- bias and a running mean of zeros, would give both one buffer node); those in `trainable` get
-- requires_grad
local function params(list, trainable)
  for _, t in ipairs(list) do t:realize() end
  for _, t in ipairs(trainable or list) do t.requires_grad = true end
end

local function opts_of(what, opts, names)
  if opts == nil then return {} end
  if type(opts) ~= "table" or is_tensor(opts) then fail(what, "options are a %s, expected a table", type(opts)) end
  for k in pairs(opts) do
    local known = false
    for _, n in ipairs(names) do known = known or k == n end
    if not known then fail(what, "unknown option %s (options: %s)", tostring(k), table.concat(names, ", ")) end
  end
  return opts
end

local function check_input(what, x, ndim, axis, size)
  if not is_tensor(x) then error(("expected a Tensor, got a %s"):format(type(x)), 0) end
  if (ndim and x.ndim ~= ndim) or (axis and x.shape[axis] ~= size) then
    error(("the input %s does not fit: expected %s"):format(shape_str(x.shape), what), 0)
  end
end

-- Linear(in_features, out_features [, {bias = true}]): y = x @ weight^T + bias, weight (out, in)
nn.Linear = class("Linear", function(self, n_in, n_out, opts)
  count("Linear", "in_features", n_in, 0)
  count("Linear", "out_features", n_out, 0)
  opts = opts_of("Linear", opts, { "bias" })
  local bound = n_in > 0 and 1 / math.sqrt(n_in) or 0
  self.weight = uniform({ n_out, n_in }, bound)
  if opts.bias ~= false then self.bias = uniform({ n_out }, bound) end
  params({ self.weight, self.bias })
  self._args = ("%d, %d"):format(n_in, n_out)
end, function(self, x)
  return x:linear(self.weight, self.bias)
end)

local function conv_config(what, self, n_in, n_out, kernel, opts, names)
  count(what, "in_channels", n_in, 1)
  count(what, "out_channels", n_out, 1)
  opts = opts_of(what, opts, names)
  local k = pair(what, "kernel_size", kernel, 1)
  self.stride, self.padding = pair(what, "stride", opts.stride or 1, 1), pair(what, "padding", opts.padding or 0, 0)
  self.dilation, self.groups = pair(what, "dilation", opts.dilation or 1, 1), count(what, "groups", opts.groups or 1, 1)
  if n_in % self.groups ~= 0 or n_out % self.groups ~= 0 then
    fail(what, "in_channels %d and out_channels %d must be multiples of groups %d", n_in, n_out, self.groups)
  end
  self._args = ("%d, %d, {%d, %d}"):format(n_in, n_out, k[1], k[2])
  return k, opts
end

-- Conv2d(in, out, kernel [, {stride, padding, dilation, groups, bias = true}]): weight
-- (out, in/groups, kh, kw); sizes an integer or {h, w}
nn.Conv2d = class("Conv2d", function(self, n_in, n_out, kernel, opts)
  local k
  k, opts = conv_config("Conv2d", self, n_in, n_out, kernel, opts, { "stride", "padding", "dilation", "groups", "bias" })
  local bound = 1 / math.sqrt(n_in // self.groups * k[1] * k[2])
  self.weight = uniform({ n_out, n_in // self.groups, k[1], k[2] }, bound)
  if opts.bias ~= false then self.bias = uniform({ n_out }, bound) end
  params({ self.weight, self.bias })
end, function(self, x)
  return x:conv2d(self.weight, self.bias, { stride = self.stride, padding = self.padding, dilation = self.dilation,
    groups = self.groups })
end)

-- ConvTranspose2d(in, out, kernel [, {stride, padding, output_padding, dilation, groups,
-- bias = true}]): weight (in, out/groups, kh, kw)
nn.ConvTranspose2d = class("ConvTranspose2d", function(self, n_in, n_out, kernel, opts)
  local k
  k, opts = conv_config("ConvTranspose2d", self, n_in, n_out, kernel, opts,
    { "stride", "padding", "output_padding", "dilation", "groups", "bias" })
  self.output_padding = pair("ConvTranspose2d", "output_padding", opts.output_padding or 0, 0)
  local bound = 1 / math.sqrt(n_out // self.groups * k[1] * k[2]) -- PyTorch's fan_in is weight.shape[2] * kh * kw
  self.weight = uniform({ n_in, n_out // self.groups, k[1], k[2] }, bound)
  if opts.bias ~= false then self.bias = uniform({ n_out }, bound) end
  params({ self.weight, self.bias })
end, function(self, x)
  return x:conv_transpose2d(self.weight, self.bias, { stride = self.stride, padding = self.padding,
    output_padding = self.output_padding, dilation = self.dilation, groups = self.groups })
end)

-- BatchNorm2d(num_features [, {eps = 1e-5, momentum = 0.1, affine = true,
-- track_running_stats = true}]) on (N, C, H, W) inputs; see the header for training mode
nn.BatchNorm2d = class("BatchNorm2d", function(self, c, opts)
  count("BatchNorm2d", "num_features", c, 1)
  opts = opts_of("BatchNorm2d", opts, { "eps", "momentum", "affine", "track_running_stats" })
  self.num_features, self.eps, self.momentum = c, opts.eps or 1e-5, opts.momentum or 0.1
  local list, trainable = {}, {}
  if opts.affine ~= false then
    self.weight, self.bias = Tensor.ones(c), Tensor.zeros(c)
    list, trainable = { self.weight, self.bias }, { self.weight, self.bias }
  end
  if opts.track_running_stats ~= false then
    self.running_mean, self.running_var = Tensor.zeros(c), Tensor.ones(c)
    self.num_batches_tracked = Tensor.full({}, 0, { dtype = Tensor.default_int })
    for _, t in ipairs({ self.running_mean, self.running_var, self.num_batches_tracked }) do list[#list + 1] = t end
  end
  params(list, trainable)
  self._args = tostring(c)
end, function(self, x)
  local c = self.num_features
  check_input(("(N, %d, H, W)"):format(c), x, 4, 2, c)
  local rm, rv, nbt = self.running_mean, self.running_var, self.num_batches_tracked
  -- an update no optimizer step realized: realize it now, so that updates never chain
  if rm and not (realized(rm) and realized(rv) and realized(nbt)) then Tensor.realize_all({ rm, rv, nbt }) end
  if rm and not Tensor.training then
    return x:batchnorm(self.weight, self.bias, rm, (rv + self.eps):rsqrt())
  end
  local n = x.shape[1] * x.shape[3] * x.shape[4]
  if n < 2 then error(("expected more than 1 value per channel when training, got input %s"):format(shape_str(x.shape)), 0) end
  local mean = x:mean({ 1, 3, 4 })
  local detached = mean.detach and mean:detach() or mean
  local y = x - detached:reshape(1, c, 1, 1)
  local var = (y * y):mean({ 1, 3, 4 }) -- biased, to normalize
  local out = x:batchnorm(self.weight, self.bias, mean, (var + self.eps):rsqrt())
  if rm then
    local uvar = var.detach and var:detach() or var
    local m = self.momentum
    rm:assign(rm * (1 - m) + detached * m)
    rv:assign(rv * (1 - m) + uvar * (m * n / (n - 1)))
    nbt:assign(nbt + 1)
    queue(rm)
    queue(rv)
    queue(nbt)
  end
  return out
end)

-- LayerNorm(normalized_shape [, {eps = 1e-5, elementwise_affine = true, bias = true}]):
-- normalizes over the last #normalized_shape axes (an integer is one axis)
nn.LayerNorm = class("LayerNorm", function(self, shape, opts)
  shape = type(shape) == "table" and { table.unpack(shape) } or { shape }
  for _, d in ipairs(shape) do count("LayerNorm", "normalized_shape", d, 1) end
  opts = opts_of("LayerNorm", opts, { "eps", "elementwise_affine", "bias" })
  self.normalized_shape, self.eps = shape, opts.eps or 1e-5
  if opts.elementwise_affine ~= false then
    self.weight = Tensor.ones(shape)
    if opts.bias ~= false then self.bias = Tensor.zeros(shape) end
    params({ self.weight, self.bias })
  end
  self._args = "{" .. table.concat(shape, ", ") .. "}"
end, function(self, x)
  local s = self.normalized_shape
  if not is_tensor(x) then error(("expected a Tensor, got a %s"):format(type(x)), 0) end
  local ok = x.ndim >= #s
  for i = 1, #s do ok = ok and x.shape[x.ndim - #s + i] == s[i] end
  if not ok then error(("the input %s does not end in %s"):format(shape_str(x.shape), shape_str(s)), 0) end
  local axes = {}
  for i = 1, #s do axes[i] = -i end
  local y = x:layernorm(axes, self.eps)
  if self.weight then y = y * self.weight end
  if self.bias then y = y + self.bias end
  return y
end)

-- GroupNorm(num_groups, num_channels [, {eps = 1e-5, affine = true}]) on (N, C, ...) inputs
nn.GroupNorm = class("GroupNorm", function(self, g, c, opts)
  count("GroupNorm", "num_groups", g, 1)
  count("GroupNorm", "num_channels", c, 1)
  if c % g ~= 0 then fail("GroupNorm", "num_channels %d is not a multiple of num_groups %d", c, g) end
  opts = opts_of("GroupNorm", opts, { "eps", "affine" })
  self.num_groups, self.eps = g, opts.eps or 1e-5
  if opts.affine ~= false then
    self.weight, self.bias = Tensor.ones(c), Tensor.zeros(c)
    params({ self.weight, self.bias })
  end
  self._args = ("%d, %d"):format(g, c)
end, function(self, x)
  if not is_tensor(x) or x.ndim < 2 or x.shape[2] % self.num_groups ~= 0 then
    error(("the input %s needs (N, C, ...) with C a multiple of %d"):format(is_tensor(x) and shape_str(x.shape) or type(x),
      self.num_groups), 0)
  end
  local y = x:reshape(x.shape[1], self.num_groups, -1):layernorm(-1, self.eps):reshape(x.shape)
  if self.weight then
    if self.weight.shape[1] ~= x.shape[2] then
      error(("the input %s has %d channels, expected %d"):format(shape_str(x.shape), x.shape[2], self.weight.shape[1]), 0)
    end
    local s = { 1, x.shape[2] }
    for i = 3, x.ndim do s[i] = 1 end
    y = y * self.weight:reshape(s) + self.bias:reshape(s)
  end
  return y
end)

-- Embedding(num_embeddings, embedding_dim): rows of weight (num, dim) at 1-based indices
nn.Embedding = class("Embedding", function(self, n, d)
  count("Embedding", "num_embeddings", n, 1)
  count("Embedding", "embedding_dim", d, 1)
  self.weight = Tensor.randn(n, d)
  params({ self.weight })
  self._args = ("%d, %d"):format(n, d)
end, function(self, idx)
  return idx:embedding(self.weight)
end)

-- Dropout([p = 0.5]): x:dropout(p) (active while lg.Tensor.training)
nn.Dropout = class("Dropout", function(self, p)
  p = p or 0.5
  if type(p) ~= "number" or p < 0 or p > 1 then fail("Dropout", "p is %s, expected a number in [0, 1]", tostring(p)) end
  self.p = p
  self._args = tostring(p)
end, function(self, x)
  return x:dropout(self.p)
end)

-- Sequential(layer1, layer2, ...): each layer (or function of one tensor) applied in turn; the
-- layers are at positions 1..n, so their parameters are named "1.weight", ...
nn.Sequential = class("Sequential", function(self, ...)
  local n = select("#", ...)
  for i = 1, n do
    local l = select(i, ...)
    local mt = getmetatable(l)
    if type(l) ~= "function" and not (type(mt) == "table" and mt.__call) then
      fail("Sequential", "item %d is a %s, expected a layer or a function", i, type(l))
    end
    self[i] = l
  end
end, function(self, x)
  for i, l in ipairs(self) do
    local ok, r = pcall(l, x)
    if not ok then error(type(r) == "string" and ("[%d] %s"):format(i, bare(r)) or r, 0) end
    x = r
  end
  return x
end)
nn.Sequential.__tostring = function(self)
  local parts = {}
  for i, l in ipairs(self) do parts[i] = type(l) == "function" and "function" or tostring(l) end
  return "Sequential(" .. table.concat(parts, ", ") .. ")"
end

return nn
