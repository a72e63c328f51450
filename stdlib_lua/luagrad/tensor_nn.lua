-- Functional neural-network ops of luagrad.tensor besides convolution and pooling
-- (tensor_conv.lua), composed from Tensor ops as tinygrad does; the scheduler fuses them.
--
-- Layouts are PyTorch's: linear weights (out, in). Class indices (cross_entropy targets,
-- one_hot, embedding) are 1-based. Losses take {reduction = "mean" | "sum" | "none"}.
-- Tensor.training (unset, so false, by default, as tinygrad's) turns dropout on; lg.nn's
-- BatchNorm2d and Dropout read it too.
local Tensor = require "luagrad.tensor"
local A = require "luagrad.tensor_nn_args"

local shape_str, is_tensor, raise = Tensor.shape_str, Tensor.is_tensor, Tensor.raise
local check, options, range, concat = A.check, A.options, A.range, A.concat

-- ---- normalization -------------------------------------------------------------------------

-- x:batchnorm(weight, bias, mean, invstd [, axis = 2]): (x - mean) * weight * invstd + bias, the
-- per-channel tensors laid along axis (weight and bias may be nil), as tinygrad's batchnorm
function Tensor:batchnorm(weight, bias, mean, invstd, axis)
  check("batchnorm", self, "the input")
  local a = Tensor.axis(axis or 2, self.ndim, "batchnorm") + 1
  local shape = {}
  for i = 1, self.ndim do shape[i] = i == a and self.shape[a] or 1 end
  local function along(t, name)
    check("batchnorm", t, name)
    if t:numel() ~= self.shape[a] then
      raise("batchnorm: %s %s does not match the %d channels of the input %s on axis %d", name, shape_str(t.shape),
        self.shape[a], shape_str(self.shape), a)
    end
    return t:reshape(shape)
  end
  local x = self - along(mean, "mean")
  if weight ~= nil then x = x * along(weight, "weight") end
  x = x * along(invstd, "invstd")
  if bias ~= nil then x = x + along(bias, "bias") end
  return x
end

-- x:layernorm([axis = -1 [, eps = 1e-5]]): (x - mean) / sqrt(var + eps) over the axis or axes
function Tensor:layernorm(axis, eps)
  check("layernorm", self, "the input")
  axis = axis or -1
  local y = self - self:mean(axis, true)
  return y * ((y * y):mean(axis, true) + (eps or 1e-5)):rsqrt()
end

-- x:dropout([p = 0.5]): while Tensor.training, zeros with probability p and scales the rest by
-- 1/(1-p); otherwise x itself
function Tensor:dropout(p)
  p = p or 0.5
  if type(p) ~= "number" or p < 0 or p > 1 then raise("dropout: p is %s, expected a number in [0, 1]", tostring(p)) end
  if not Tensor.training or p == 0 then return self end
  if p == 1 then return self * 0 end
  return Tensor.rand(self.shape):ge(p):where(self, 0) / (1 - p)
end

-- ---- indices -------------------------------------------------------------------------------

local function check_int(what, t)
  check(what, t, "the index")
  if t.dtype.kind ~= "int" and t.dtype.kind ~= "uint" then
    raise("%s: the index has dtype %s, expected an integer dtype", what, tostring(t.dtype))
  end
end

-- idx:one_hot([num_classes]): a new last axis with 1 at the (1-based) class of each element, int32;
-- num_classes defaults to the largest index (which realizes idx)
function Tensor:one_hot(num_classes)
  check_int("one_hot", self)
  num_classes = num_classes or self:max():item()
  if math.type(num_classes) ~= "integer" or num_classes < 0 then
    raise("one_hot: num_classes is %s, expected an integer >= 0", tostring(num_classes))
  end
  local s = {}
  for i = 1, self.ndim do s[i] = 1 end
  s[#s + 1] = num_classes
  local classes = Tensor.arange(1, num_classes + 1):reshape(s)
  return self:unsqueeze(-1):eq(classes):cast(Tensor.default_int)
end

-- idx:embedding(weight): the rows of weight (V, D) at the 1-based indices, shape idx.shape..(D);
-- a one-hot product (as tinygrad's Embedding), so it fuses and has a gradient for weight
function Tensor:embedding(weight)
  check_int("embedding", self)
  check("embedding", weight, "the weight")
  if weight.ndim ~= 2 then raise("embedding: the weight %s needs 2 dimensions (num, dim)", shape_str(weight.shape)) end
  local v, d = weight.shape[1], weight.shape[2]
  local big = concat(self.shape, { v, d })
  local ones = {}
  for i = 1, self.ndim do ones[i] = 1 end
  local classes = Tensor.arange(1, v + 1):reshape(concat(ones, { v, 1 }))
  local hit = self:reshape(concat(self.shape, { 1, 1 })):eq(classes)
  return hit:where(weight:expand(big), 0):sum(-2)
end

-- ---- linear and attention ------------------------------------------------------------------

-- x:linear(w [, b]): x @ w^T + b with w (out, in), as PyTorch's F.linear
function Tensor:linear(w, b)
  check("linear", self, "the input")
  check("linear", w, "the weight")
  if w.ndim ~= 2 or self.ndim < 1 or self.shape[self.ndim] ~= w.shape[2] then
    raise("linear: input %s does not match weight %s (out, in): %s features vs %s", shape_str(self.shape),
      shape_str(w.shape), tostring(self.shape[self.ndim]), tostring(w.shape[2]))
  end
  local r = self:matmul(w:transpose(1, 2))
  if b ~= nil then r = r + b end
  return r
end

-- q:scaled_dot_product_attention(k, v [, mask] [, {is_causal =, dropout_p =}]):
-- softmax(q k^T / sqrt(E) + mask) v; a bool mask keeps where true, a float mask is added;
-- is_causal keeps key j <= query i
function Tensor:scaled_dot_product_attention(k, v, mask, opts)
  local what = "scaled_dot_product_attention"
  if opts == nil and type(mask) == "table" and not is_tensor(mask) then mask, opts = nil, mask end
  opts = options(what, opts, { "is_causal", "dropout_p" })
  check(what, self, "the query")
  check(what, k, "the key")
  check(what, v, "the value")
  if self.ndim < 2 or k.ndim < 2 or v.ndim < 2 or self.shape[self.ndim] ~= k.shape[k.ndim]
    or k.shape[k.ndim - 1] ~= v.shape[v.ndim - 1] then
    raise("%s: query %s, key %s and value %s do not fit (..., L, E), (..., S, E), (..., S, Ev)", what,
      shape_str(self.shape), shape_str(k.shape), shape_str(v.shape))
  end
  local qk = self:matmul(k:transpose(-2, -1)) / math.sqrt(self.shape[self.ndim])
  if opts.is_causal then
    local L, S = qk.shape[qk.ndim - 1], qk.shape[qk.ndim]
    mask = Tensor.arange(L):reshape(L, 1):ge(Tensor.arange(S):reshape(1, S))
  end
  if mask ~= nil then
    check(what, mask, "the mask")
    if mask.dtype.kind == "bool" then mask = mask:where(0, -math.huge) end
    qk = qk + mask
  end
  return qk:softmax(-1):dropout(opts.dropout_p or 0):matmul(v)
end

-- ---- losses --------------------------------------------------------------------------------

local function reduce(what, loss, opts)
  local r = opts.reduction or "mean"
  if r == "mean" then return loss:mean() end
  if r == "sum" then return loss:sum() end
  if r == "none" then return loss end
  raise("%s: reduction is %s, expected 'mean', 'sum' or 'none'", what, tostring(r))
end

local function same_shape(what, a, b)
  local ok = a.ndim == b.ndim
  for i = 1, a.ndim do ok = ok and a.shape[i] == b.shape[i] end
  if not ok then raise("%s: input %s and target %s need the same shape", what, shape_str(a.shape), shape_str(b.shape)) end
end

-- logits:cross_entropy(target [, {reduction =, label_smoothing =}]): logits (C), (N, C) or
-- (N, C, d...); target the 1-based classes (an integer tensor without the C axis) or class
-- probabilities (the logits' shape), as PyTorch's F.cross_entropy
function Tensor:cross_entropy(target, opts)
  local what = "cross_entropy"
  check(what, self, "the input")
  check(what, target, "the target")
  opts = options(what, opts, { "reduction", "label_smoothing" })
  local ls = opts.label_smoothing or 0
  if type(ls) ~= "number" or ls < 0 or ls > 1 then raise("%s: label_smoothing is %s, expected a number in [0, 1]", what, tostring(ls)) end
  if self.ndim < 1 then raise("%s: the input %s needs a class axis", what, shape_str(self.shape)) end
  local a = self.ndim == 1 and 1 or 2
  local c = self.shape[a]
  local y
  if target.dtype.kind == "int" or target.dtype.kind == "uint" then
    local want = {}
    for i = 1, self.ndim do
      if i ~= a then want[#want + 1] = self.shape[i] end
    end
    local ok = target.ndim == #want
    for i = 1, #want do ok = ok and target.shape[i] == want[i] end
    if not ok then
      raise("%s: class indices %s do not match the input %s (expected %s)", what, shape_str(target.shape),
        shape_str(self.shape), shape_str(want))
    end
    y = target:one_hot(c)
    if self.ndim > 2 then y = y:permute(concat({ 1, self.ndim }, range(2, self.ndim - 1))) end
    y = y:cast(self.dtype.kind == "float" and self.dtype or Tensor.default_float)
  else
    same_shape(what, self, target)
    y = target
  end
  if ls > 0 then y = y * (1 - ls) + ls / c end
  return reduce(what, -(self:log_softmax(a) * y):sum(a), opts)
end

-- p:binary_cross_entropy(target [, {reduction =, weight =}]): -(y log p + (1-y) log(1-p)), the
-- logs clamped at -100 as PyTorch. Its gradient is PyTorch's (Tensor.func): the derivative of
-- the clamped logs would be 0/0 where p is 0 or 1 (a saturated sigmoid)
function Tensor:binary_cross_entropy(target, opts)
  local what = "binary_cross_entropy"
  check(what, self, "the input")
  check(what, target, "the target")
  same_shape(what, self, target)
  opts = options(what, opts, { "reduction", "weight" })
  local loss = -(target * self:log():maximum(-100) + (1 - target) * (1 - self):log():maximum(-100))
  loss = Tensor.func("binary_cross_entropy", {}, loss, self, target)
  if opts.weight ~= nil then loss = loss * opts.weight end
  return reduce(what, loss, opts)
end

-- the gradients of binary_cross_entropy as PyTorch's: (p - y) / max(p (1 - p), 1e-12) for p,
-- log(1 - p) - log(p) for the target
Tensor.func_grads.binary_cross_entropy = function(g, _, _, p, y)
  return g * (p - y) / ((1 - p) * p):maximum(1e-12), g * ((1 - p):log() - p:log())
end

-- x:binary_cross_entropy_with_logits(target [, {reduction =, weight =, pos_weight =}]): the loss
-- of sigmoid(x), computed stably from the logits
function Tensor:binary_cross_entropy_with_logits(target, opts)
  local what = "binary_cross_entropy_with_logits"
  check(what, self, "the input")
  check(what, target, "the target")
  same_shape(what, self, target)
  opts = options(what, opts, { "reduction", "weight", "pos_weight" })
  -- log(1 + e^-x) = log(1 + e^-|x|) + max(-x, 0); -|x| as -max(x, -x), whose tie at 0 splits
  -- the gradient evenly as the other max's does, so the two kinks cancel (abs'(0) is 1)
  local softplus_neg = (1 + (-self:maximum(-self)):exp()):log() + (-self):maximum(0)
  local lw = opts.pos_weight ~= nil and (opts.pos_weight - 1) * target + 1 or 1
  local loss = (1 - target) * self + lw * softplus_neg
  if opts.weight ~= nil then loss = loss * opts.weight end
  return reduce(what, loss, opts)
end

-- x:mse(target [, {reduction =}]): the mean squared error (x - target)^2
function Tensor:mse(target, opts)
  check("mse", self, "the input")
  check("mse", target, "the target")
  Tensor.broadcast_shape("mse", self.shape, target.shape)
  local d = self - target
  return reduce("mse", d * d, options("mse", opts, { "reduction" }))
end

return Tensor
