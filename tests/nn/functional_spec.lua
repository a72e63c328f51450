-- The functional nn ops (tensor_conv.lua, tensor_nn.lua) against PyTorch's results (tests/fixtures/nn_torch.lua),
-- the single kernel of a convolution or a pooling, and the errors on bad shapes.
local lg = require "luagrad"
local N = require "nn.helpers"
local T, fx, F, I, check = lg.Tensor, N.fx, N.F, N.I, N.check

describe("convolution", function()
  it("conv2d: plain, strided/padded/dilated with groups, depthwise, pointwise", function()
    for _, name in ipairs({ "conv2d_basic", "conv2d_strided", "conv2d_depthwise", "conv2d_pointwise" }) do
      local c = fx[name]
      local b = c.b and F(c.b) or nil
      local o = c.opts
      check(c.y, F(c.x):conv2d(F(c.w), b, { stride = o.stride, padding = o.padding, dilation = o.dilation,
        groups = o.groups }), 1e-5, name)
    end
    local c = fx.conv2d_depthwise -- options without a bias
    check(c.y, F(c.x):conv2d(F(c.w), { padding = 1, groups = 4 }))
  end)

  it("conv2d's own gradients (a transposed convolution for the input) match PyTorch's", function()
    for _, name in ipairs({ "conv2d_basic", "conv2d_strided", "conv2d_depthwise", "conv2d_pointwise", "conv2d_outpad" }) do
      local c = fx[name]
      local o = c.opts
      local x, w = F(c.x), F(c.w)
      x.requires_grad, w.requires_grad = true, true
      local y = x:conv2d(w, c.b and F(c.b) or nil, { stride = o.stride, padding = o.padding, dilation = o.dilation,
        groups = o.groups })
      assert.are.equal("FUNCTION", (c.b and y.uop.src[1] or y.uop).op) -- the gradient is conv2d's rule
      y:backward(F(c.gy))
      check(c.gx, x.grad, 1e-5, name .. " input")
      check(c.gw, w.grad, 1e-5, name .. " weight")
    end
  end)

  it("conv1d and conv_transpose2d (stride, padding, output_padding, dilation, groups)", function()
    local c = fx.conv1d
    check(c.y, F(c.x):conv1d(F(c.w), F(c.b), { stride = 2, padding = 1, dilation = 2 }))
    for _, name in ipairs({ "conv_transpose2d_basic", "conv_transpose2d_groups", "conv_transpose2d_bigpad" }) do
      c = fx[name]
      check(c.y, F(c.x):conv_transpose2d(F(c.w), c.b and F(c.b) or nil, c.opts), 1e-5, name)
    end
  end)

  it("a convolution of realized inputs is one kernel: one multiply and one reduce", function()
    local c = fx.conv2d_strided
    local x, w, b = F(c.x):realize(), F(c.w):realize(), F(c.b):realize()
    local o = c.opts
    local y = x:conv2d(w, b, { stride = o.stride, padding = o.padding, dilation = o.dilation, groups = o.groups })
    assert.are.equal(1, N.kernels(function() y:realize() end))
    check(c.y, y)
    local c1 = fx.conv1d
    local x1, w1 = F(c1.x):realize(), F(c1.w):realize()
    assert.are.equal(1, N.kernels(function() x1:conv1d(w1, nil, { stride = 2, padding = 1, dilation = 2 }):realize() end))
    local ct = fx.conv_transpose2d_basic
    local xt, wt = F(ct.x):realize(), F(ct.w):realize()
    assert.are.equal(1, N.kernels(function() xt:conv_transpose2d(wt, nil, ct.opts):realize() end))
  end)

  it("names the shapes when channels, sizes or options do not fit", function()
    local x, w = T.zeros(2, 3, 8, 8), T.zeros(4, 2, 3, 3)
    assert.error_matches(function() x:conv2d(w) end,
      "conv2d: input (2,3,8,8) has 3 channels, but weight (4,2,3,3) with groups 1 expects 2", 1, true)
    assert.error_matches(function() T.zeros(1, 4, 8, 8):conv2d(T.zeros(6, 2, 3, 3), nil, { groups = 4 }) end,
      "conv2d: input (1,4,8,8) has 4 channels, but weight (6,2,3,3) with groups 4 expects 8", 1, true)
    assert.error_matches(function() T.zeros(1, 4, 8, 8):conv2d(T.zeros(3, 2, 3, 3), nil, { groups = 2 }) end,
      "conv2d: weight (3,2,3,3) has 3 output channels, not a multiple of groups 2", 1, true)
    assert.error_matches(function() T.zeros(1, 2, 4, 4):conv2d(T.zeros(1, 2, 3, 3), nil, { dilation = 2 }) end,
      "conv2d: the kernel spans 5 (size 3, dilation 2) on axis 3, more than the padded input's 4 (input (1,2,4,4))", 1, true)
    assert.error_matches(function() T.zeros(2, 3, 8):conv2d(T.zeros(4, 3, 3, 3)) end,
      "conv2d: input (2,3,8) and weight (4,3,3,3) need 4 dimensions each", 1, true)
    assert.error_matches(function() T.zeros(1, 3, 8, 8):conv2d(T.zeros(4, 3, 3, 3), T.zeros(3)) end,
      "conv2d: bias (3) does not match the 4 output channels of weight (4,3,3,3)", 1, true)
    assert.error_matches(function() T.zeros(1, 3, 8, 8):conv2d(T.zeros(4, 3, 3, 3), nil, { stride = { 1, 2, 3 } }) end,
      "conv2d: stride has 3 values, expected 2", 1, true)
    assert.error_matches(function() T.zeros(1, 3, 8, 8):conv2d(T.zeros(4, 3, 3, 3), nil, { padding = -1 }) end,
      "conv2d: padding is -1, expected integers >= 0", 1, true)
    assert.error_matches(function() T.zeros(1, 3, 8, 8):conv2d(T.zeros(4, 3, 3, 3), nil, { strides = 2 }) end,
      "conv2d: unknown option strides (options: stride, padding, dilation, groups)", 1, true)
    assert.error_matches(function() T.zeros(1, 4, 3, 3):conv_transpose2d(T.zeros(2, 3, 3, 3)) end,
      "conv_transpose2d: input (1,4,3,3) has 4 channels, but weight (2,3,3,3) with groups 1 expects 2", 1, true)
    assert.error_matches(function() T.zeros(1, 2, 3, 3):conv_transpose2d(T.zeros(2, 3, 3, 3), nil, { output_padding = 1 }) end,
      "conv_transpose2d: output_padding 1 must be smaller than stride 1 or dilation 1", 1, true)
  end)
end)

describe("pooling", function()
  it("max_pool2d and avg_pool2d with kernel, stride, padding, dilation and count_include_pad", function()
    local x = F(fx.pool_x)
    for i, c in ipairs(fx.max_pool2d) do check(c.y, x:max_pool2d(c.kernel, c.opts), 1e-6, "max " .. i) end
    for i, c in ipairs(fx.avg_pool2d) do check(c.y, x:avg_pool2d(c.kernel, c.opts), 1e-6, "avg " .. i) end
  end)

  it("is one kernel of one reduce, padding included", function()
    local x = F(fx.pool_x):realize()
    assert.are.equal(1, N.kernels(function() x:max_pool2d(3, { stride = 2, padding = 1 }):realize() end))
    assert.are.equal(1, N.kernels(function() x:avg_pool2d(3, { stride = 2, padding = 1 }):realize() end))
    assert.are.equal(1, N.kernels(function() x:max_pool2d(2):realize() end))
  end)

  it("pools integers with their own lowest value as padding", function()
    local x = T({ { { -5, -7 }, { -3, -9 } } }, { dtype = lg.int32 })
    assert.are.same({ { { -5, -5, -7 }, { -3, -3, -7 }, { -3, -3, -9 } } }, x:max_pool2d(2, { stride = 1, padding = 1 }):totable())
  end)

  it("rejects padding over half the kernel and windows larger than the input", function()
    local x = T.zeros(1, 1, 4, 4)
    assert.error_matches(function() x:max_pool2d(2, { padding = 2 }) end, "max_pool2d: padding 2 is more than half the kernel 2", 1, true)
    assert.error_matches(function() x:avg_pool2d(5) end,
      "avg_pool2d: the kernel spans 5 (size 5, dilation 1) on axis 3, more than the padded input's 4", 1, true)
    assert.error_matches(function() T.zeros(4):max_pool2d(2) end, "max_pool2d: the input (4) needs at least 2 dimensions", 1, true)
  end)
end)

describe("normalization, embedding, linear, attention", function()
  it("batchnorm from mean and invstd, weight and bias; layernorm over one or two axes", function()
    local c = fx.batchnorm
    local invstd = (F(c.var) + c.eps):rsqrt()
    check(c.y, F(c.x):batchnorm(F(c.weight), F(c.bias), F(c.mean), invstd))
    local l = fx.layernorm
    check(l.y_last, F(l.x):layernorm())
    check(l.y_two, F(l.x):layernorm({ -2, -1 }, 1e-3))
    assert.error_matches(function() F(c.x):batchnorm(nil, nil, T.zeros(4), T.ones(3)) end,
      "batchnorm: mean (4) does not match the 3 channels of the input (2,3,4,4) on axis 2", 1, true)
  end)

  it("embedding of 1-based indices; one_hot", function()
    local e = fx.embedding
    check(e.y, I(e.idx):embedding(F(e.weight)), 1e-7)
    assert.are.same({ { 0, 1, 0 }, { 0, 0, 1 }, { 1, 0, 0 }, { 0, 0, 0 } }, T({ 2, 3, 1, 4 }):one_hot(3):totable())
    assert.are.same({ 2, 2, 4 }, T({ { 1, 4 }, { 2, 2 } }):one_hot().shape)
    assert.are.equal(lg.int32, T({ 1 }):one_hot(2).dtype)
    assert.error_matches(function() T({ 1.5 }):one_hot(3) end, "one_hot: the index has dtype float32, expected an integer dtype", 1, true)
    assert.error_matches(function() T({ 1 }):embedding(T.zeros(3)) end, "embedding: the weight (3) needs 2 dimensions", 1, true)
  end)

  it("linear with PyTorch's (out, in) weight", function()
    local c = fx.linear
    check(c.y, F(c.x):linear(F(c.w), F(c.b)))
    assert.error_matches(function() T.zeros(2, 3):linear(T.zeros(5, 4)) end,
      "linear: input (2,3) does not match weight (5,4) (out, in): 3 features vs 4", 1, true)
  end)

  it("scaled_dot_product_attention: plain, bool and float masks, causal", function()
    local c = fx.sdpa
    local q, k, v = F(c.q), F(c.k), F(c.v)
    check(c.y, q:scaled_dot_product_attention(k, v))
    check(c.y_bool, q:scaled_dot_product_attention(k, v, I(c.bool_mask):bool()))
    check(c.y_float, q:scaled_dot_product_attention(k, v, F(c.float_mask)))
    check(c.y_causal, q:scaled_dot_product_attention(k, v, { is_causal = true }))
    check(c.y4_causal, F(c.q4):scaled_dot_product_attention(F(c.k4), F(c.v4), nil, { is_causal = true }))
    assert.error_matches(function() T.zeros(2, 3, 4):scaled_dot_product_attention(T.zeros(2, 5, 3), T.zeros(2, 5, 6)) end,
      "scaled_dot_product_attention: query (2,3,4), key (2,5,3) and value (2,5,6) do not fit", 1, true)
  end)
end)

describe("losses", function()
  it("cross_entropy with class indices, probabilities, label smoothing, extra axes and reductions", function()
    local c = fx.cross_entropy
    local lo, idx = F(c.logits), I(c.idx)
    check(c.mean, lo:cross_entropy(idx))
    check(c.sum, lo:cross_entropy(idx, { reduction = "sum" }))
    check(c.none, lo:cross_entropy(idx, { reduction = "none" }))
    check(c.smooth, lo:cross_entropy(idx, { label_smoothing = 0.1 }))
    check(c.probs_mean, lo:cross_entropy(F(c.probs)))
    check(c.probs_smooth, lo:cross_entropy(F(c.probs), { label_smoothing = 0.2, reduction = "none" }))
    check(c.spatial, F(c.logits3):cross_entropy(I(c.idx3), { reduction = "none" }))
    check(c.spatial_mean, F(c.logits3):cross_entropy(I(c.idx3), { label_smoothing = 0.3 }))
    assert.error_matches(function() lo:cross_entropy(T({ 1, 2, 3 })) end,
      "cross_entropy: class indices (3) do not match the input (4,5) (expected (4))", 1, true)
    assert.error_matches(function() lo:cross_entropy(T.zeros(4, 4)) end,
      "cross_entropy: input (4,5) and target (4,4) need the same shape", 1, true)
    assert.error_matches(function() lo:cross_entropy(idx, { reduction = "avg" }) end,
      "cross_entropy: reduction is avg, expected 'mean', 'sum' or 'none'", 1, true)
    assert.error_matches(function() lo:cross_entropy(idx, { ignore_index = 1 }) end,
      "cross_entropy: unknown option ignore_index (options: reduction, label_smoothing)", 1, true)
  end)

  it("binary_cross_entropy (logs clamped at -100), with logits and pos_weight, and mse", function()
    local c = fx.bce
    local p, t = F(c.p), F(c.t)
    check(c.mean, p:binary_cross_entropy(t))
    check(c.none, p:binary_cross_entropy(t, { reduction = "none" }))
    check(c.weighted, p:binary_cross_entropy(t, { weight = F(c.w), reduction = "sum" }))
    check(c.logits_mean, F(c.logits):binary_cross_entropy_with_logits(t))
    check(c.logits_pw, F(c.logits):binary_cross_entropy_with_logits(t, { pos_weight = F(c.pos_weight), reduction = "none" }))
    local m = fx.mse
    check(m.mean, F(m.a):mse(F(m.b)))
    check(m.sum, F(m.a):mse(F(m.b), { reduction = "sum" }))
  end)
end)

describe("dropout", function()
  after_each(function() T.training = nil end)

  it("is the identity unless Tensor.training", function()
    local x = T.ones(4, 4)
    assert.is_nil(T.training)
    assert.are.equal(x, x:dropout(0.5))
    T.training = true
    assert.are.equal(x, x:dropout(0))
  end)

  it("while training, zeros about p of the values and scales the rest by 1/(1-p)", function()
    T.training = true
    lg.manual_seed(3)
    local vals = N.flat(T.ones(4000):dropout(0.25):totable())
    local zeros = 0
    for _, v in ipairs(vals) do
      if v == 0 then zeros = zeros + 1 else N.close(1 / 0.75, v, 1e-6) end
    end
    assert.is_true(math.abs(zeros / 4000 - 0.25) < 0.03, "dropped " .. zeros)
    assert.are.same({ 0, 0 }, T.ones(2):dropout(1):totable())
    assert.error_matches(function() T.ones(2):dropout(1.5) end, "dropout: p is 1.5, expected a number in [0, 1]", 1, true)
  end)
end)
