-- Gradients of the functional nn ops and layers against PyTorch's (tests/fixtures/nn_torch.lua,
-- the bwd_* entries of gen_nn.py): for a fixed random upstream gradient gy, every input's and
-- parameter's gradient. The inputs are random floats, so max, relu and abs meet no ties (where
-- luagrad shares the gradient and PyTorch does not).
local lg = require "luagrad"
local N = require "nn.helpers"
local T, nn, fx, F, I, check = lg.Tensor, lg.nn, N.fx, N.F, N.I, N.check

-- marks the inputs, runs fn on them and backward with the fixture gy (false or nil: a scalar
-- result, gradient 1); returns fn's result
local function run(fn, inputs, gy)
  for _, t in ipairs(inputs) do t.requires_grad = true end
  local y = fn(table.unpack(inputs))
  y:backward(gy and F(gy) or nil)
  return y
end

-- a fixture's options with its tensors as Tensors
local function opts_of(o)
  local r = {}
  for k, v in pairs(o) do r[k] = type(v) == "table" and v.data and F(v) or v end
  return r
end

describe("backward against PyTorch", function()
  after_each(function() T.training = nil end)

  it("linear: input, weight and bias", function()
    local c = fx.bwd_linear
    local x, w, b = F(c.x), F(c.w), F(c.b)
    check(c.y, run(T.linear, { x, w, b }, c.gy))
    check(c.gx, x.grad, 1e-5, "x")
    check(c.gw, w.grad, 1e-5, "w")
    check(c.gb, b.grad, 1e-5, "b")
  end)

  it("conv1d and conv_transpose2d (stride, padding, output_padding, dilation, groups)", function()
    for name, cases in pairs({ conv1d = fx.bwd_conv1d, conv_transpose2d = fx.bwd_conv_transpose2d }) do
      for i, c in ipairs(cases) do
        local what = ("%s %d"):format(name, i)
        local x, w = F(c.x), F(c.w)
        local inputs = { x, w, c.b and F(c.b) or nil }
        check(c.y, run(function(x_, w_, b_) return x_[name](x_, w_, b_, c.opts) end, inputs, c.gy), 1e-5, what)
        check(c.gx, x.grad, 1e-5, what .. " x")
        check(c.gw, w.grad, 1e-5, what .. " w")
        if c.b then check(c.gb, inputs[3].grad, 1e-5, what .. " b") end
      end
    end
  end)

  it("max_pool2d (no ties) and avg_pool2d: padding, stride other than the kernel, dilation", function()
    for i, c in ipairs(fx.bwd_pool.cases) do
      local what = ("%s %d"):format(c.op, i)
      local x = F(fx.bwd_pool.x)
      check(c.y, run(function(x_) return x_[c.op](x_, c.kernel, c.opts) end, { x }, c.gy), 1e-5, what)
      check(c.gx, x.grad, 1e-5, what .. " x")
    end
  end)

  it("BatchNorm2d: batch statistics while training, running statistics in eval", function()
    local c = fx.bwd_batchnorm_train
    local bn = nn.BatchNorm2d(3)
    local x, w, b = F(c.x), F(c.weight), F(c.bias)
    bn.weight, bn.bias = w, b
    T.training = true
    check(c.y, run(function(x_) return bn(x_) end, { x, w, b }, c.gy))
    check(c.gx, x.grad, 1e-5, "train x")
    check(c.gw, w.grad, 1e-5, "train weight")
    check(c.gb, b.grad, 1e-5, "train bias")
    T.training = false
    local e = fx.bwd_batchnorm_eval
    bn.running_mean, bn.running_var = F(e.running_mean), F(e.running_var)
    x, w, b = F(e.x), F(c.weight), F(c.bias)
    bn.weight, bn.bias = w, b
    check(e.y, run(function(x_) return bn(x_) end, { x, w, b }, e.gy))
    check(e.gx, x.grad, 1e-5, "eval x")
    check(e.gw, w.grad, 1e-5, "eval weight")
    check(e.gb, b.grad, 1e-5, "eval bias")
  end)

  it("layernorm over one and two axes, LayerNorm and GroupNorm with weight and bias", function()
    local c = fx.bwd_layernorm
    local x = F(c.x)
    check(c.y_last, run(function(x_) return x_:layernorm() end, { x }, c.gy_last))
    check(c.gx_last, x.grad, 1e-5, "last x")
    x = F(c.x)
    check(c.y_two, run(function(x_) return x_:layernorm({ -2, -1 }, 1e-3) end, { x }, c.gy_two))
    check(c.gx_two, x.grad, 1e-5, "two x")
    local ln = nn.LayerNorm({ 3, 5 })
    local w, b
    x, w, b = F(c.x), F(c.weight), F(c.bias)
    ln.weight, ln.bias = w, b
    check(c.y, run(function(x_) return ln(x_) end, { x, w, b }, c.gy))
    check(c.gx, x.grad, 1e-5, "LayerNorm x")
    check(c.gw, w.grad, 1e-5, "LayerNorm weight")
    check(c.gb, b.grad, 1e-5, "LayerNorm bias")
    local g = fx.bwd_groupnorm
    local gn = nn.GroupNorm(2, 4)
    x, w, b = F(g.x), F(g.weight), F(g.bias)
    gn.weight, gn.bias = w, b
    check(g.y, run(function(x_) return gn(x_) end, { x, w, b }, g.gy))
    check(g.gx, x.grad, 1e-5, "GroupNorm x")
    check(g.gw, w.grad, 1e-5, "GroupNorm weight")
    check(g.gb, b.grad, 1e-5, "GroupNorm bias")
  end)

  it("embedding: repeated indices accumulate into the weight's gradient", function()
    local c = fx.bwd_embedding
    local w = F(c.weight)
    check(c.y, run(function(w_) return I(c.idx):embedding(w_) end, { w }, c.gy))
    check(c.gw, w.grad, 1e-5, "weight")
  end)

  it("scaled_dot_product_attention: no mask, a bool mask, causal (L < S and L = S)", function()
    local a = fx.bwd_sdpa
    for name, c in pairs(a.cases) do
      local sq = name == "causal_square"
      local q, k, v = F(sq and a.q4 or a.q), F(sq and a.k4 or a.k), F(sq and a.v4 or a.v)
      local mask = name == "bool" and I(a.bool_mask):cast(lg.bool) or nil
      local opts = { is_causal = name:find("causal") ~= nil }
      check(c.y, run(function(q_, k_, v_) return q_:scaled_dot_product_attention(k_, v_, mask, opts) end, { q, k, v },
        c.gy), 1e-5, name)
      check(c.gq, q.grad, 1e-5, name .. " q")
      check(c.gk, k.grad, 1e-5, name .. " k")
      check(c.gv, v.grad, 1e-5, name .. " v")
    end
  end)

  it("cross_entropy: class indices, probabilities (their gradient too), label smoothing, spatial", function()
    local e = fx.bwd_cross_entropy
    for i, c in ipairs(e.cases) do
      local what = "cross_entropy " .. i
      local logits = F(e[c.logits])
      local inputs = { logits }
      local target
      if c.target == "probs" then
        target = F(e.probs)
        inputs[2] = target
      else
        target = I(c.logits == "lo" and e.idx or e.idx3)
      end
      check(c.y, run(function(x_) return x_:cross_entropy(target, c.opts) end, inputs, c.gy), 1e-5, what)
      check(c.glogits, logits.grad, 1e-5, what .. " logits")
      if c.gtarget then check(c.gtarget, target.grad, 1e-5, what .. " target") end
    end
  end)

  it("binary_cross_entropy, binary_cross_entropy_with_logits (weight, pos_weight) and mse", function()
    local b = fx.bwd_bce
    for i, c in ipairs(b.probs_cases) do
      local p = F(b.p)
      check(c.y, run(function(p_) return p_:binary_cross_entropy(F(b.t), opts_of(c.opts)) end, { p }, c.gy), 1e-5,
        "bce " .. i)
      check(c.gp, p.grad, 1e-5, "bce " .. i .. " p")
    end
    for i, c in ipairs(b.logits_cases) do
      local x, t = F(b.logits), F(b.t)
      check(c.y, run(function(x_, t_) return x_:binary_cross_entropy_with_logits(t_, opts_of(c.opts)) end, { x, t },
        c.gy), 1e-5, "bce_with_logits " .. i)
      check(c.glogits, x.grad, 1e-5, "bce_with_logits " .. i .. " logits")
      check(c.gtarget, t.grad, 1e-5, "bce_with_logits " .. i .. " target")
    end
    local m = fx.bwd_mse
    for i, c in ipairs(m.cases) do
      local a, t = F(m.a), F(m.b)
      check(c.y, run(function(a_, t_) return a_:mse(t_, c.opts) end, { a, t }, c.gy), 1e-5, "mse " .. i)
      check(c.ga, a.grad, 1e-5, "mse " .. i .. " input")
      check(c.gb, t.grad, 1e-5, "mse " .. i .. " target (broadcast)")
    end
  end)

  it("binary_cross_entropy at p = 0 and 1 (saturated sigmoids), and with logits at 0", function()
    local e = fx.bwd_bce_edge
    local p, t = F(e.p), F(e.t)
    check(e.y, run(function(p_, t_) return p_:binary_cross_entropy(t_, { reduction = "none" }) end, { p, t }, e.gy))
    check(e.gp, p.grad, 1e-5, "p") -- PyTorch's: (p - t) / max(p (1 - p), 1e-12)
    check(e.gt, t.grad, 1e-5, "target") -- log(1 - p) - log(p), infinite there
    local x
    x, t = F(e.logits), F(e.t)
    check(e.y_logits, run(function(x_, t_) return x_:binary_cross_entropy_with_logits(t_, { reduction = "none" }) end,
      { x, t }, e.gy_logits))
    check(e.glogits, x.grad, 1e-5, "logits")
    check(e.gt_logits, t.grad, 1e-5, "logits target")
  end)

  it("a small CNN (Conv2d, BatchNorm2d, relu, max_pool2d, Linear, cross_entropy): every parameter's gradient", function()
    local c = fx.bwd_cnn
    local conv, bn, lin = nn.Conv2d(2, 4, 3, { padding = 1 }), nn.BatchNorm2d(4), nn.Linear(64, 5)
    conv.weight, conv.bias = F(c.conv_w), F(c.conv_b)
    bn.weight, bn.bias = F(c.bn_w), F(c.bn_b)
    lin.weight, lin.bias = F(c.lin_w), F(c.lin_b)
    local model = nn.Sequential(conv, bn, T.relu, function(h) return h:max_pool2d(2) end,
      function(h) return h:reshape(h.shape[1], -1) end, lin)
    local x = F(c.x)
    local params = { x = x, conv_w = conv.weight, conv_b = conv.bias, bn_w = bn.weight, bn_b = bn.bias,
      lin_w = lin.weight, lin_b = lin.bias }
    for _, p in pairs(params) do p.requires_grad = true end
    T.training = true
    local loss = model(x):cross_entropy(I(c.labels))
    loss:backward()
    check(c.loss, loss)
    for name, p in pairs(params) do check(c.grads[name], p.grad, 1e-5, name) end
  end)
  it("avg_pool2d(3, stride 2) on 7x6: the gradient reaches each input from every window holding it", function()
    -- the optimizer's copy of the last output column is masked out entirely here (a REDUCE of
    -- 0), which once made kernels whose loops could not nest
    local x = T.rand(1, 1, 7, 6):realize()
    x.requires_grad = true
    local g = T.rand(1, 1, 3, 2):realize()
    x:avg_pool2d(3, { stride = 2 }):backward(g)
    local gv, want = g:totable()[1][1], {}
    for i = 1, 7 do
      want[i] = {}
      for j = 1, 6 do
        local s = 0
        for oi = 1, 3 do
          for oj = 1, 2 do
            local r, c = 2 * oi - 1, 2 * oj - 1 -- the window's first row and column
            if i >= r and i < r + 3 and j >= c and j < c + 3 then s = s + gv[oi][oj] / 9 end
          end
        end
        want[i][j] = s
      end
    end
    local got = x.grad:totable()[1][1]
    for i = 1, 7 do
      for j = 1, 6 do assert.is_true(math.abs(got[i][j] - want[i][j]) < 1e-6, ("(%d,%d)"):format(i, j)) end
    end
  end)
end)
