-- lg.nn layers against PyTorch's modules (tests/fixtures/nn_torch.lua), their initialization,
-- and the walks parameters() and state_dict().
local lg = require "luagrad"
local N = require "nn.helpers"
local T, nn, fx, F, I, check = lg.Tensor, lg.nn, N.fx, N.F, N.I, N.check

local function stats(t)
  local v = N.flat(t:totable())
  local sum, sq, lo, hi = 0, 0, math.huge, -math.huge
  for _, x in ipairs(v) do
    sum, sq, lo, hi = sum + x, sq + x * x, math.min(lo, x), math.max(hi, x)
  end
  local mean = sum / #v
  return mean, math.sqrt(sq / #v - mean * mean), lo, hi
end

describe("layers", function()
  after_each(function() T.training = nil end)

  it("initialize as PyTorch: kaiming uniform weights, uniform biases, ones and zeros, normal embeddings", function()
    lg.manual_seed(0)
    local conv = nn.Conv2d(16, 32, 3, { groups = 2 })
    assert.are.same({ 32, 8, 3, 3 }, conv.weight.shape)
    local bound = 1 / math.sqrt(8 * 9)
    local mean, std, lo, hi = stats(conv.weight)
    assert.is_true(lo >= -bound and hi <= bound and hi > 0.95 * bound and lo < -0.95 * bound, ("%g %g"):format(lo, hi))
    assert.is_true(math.abs(std - bound / math.sqrt(3)) < 0.03 * bound and math.abs(mean) < 0.03 * bound)
    local _, _, blo, bhi = stats(conv.bias)
    assert.is_true(blo >= -bound and bhi <= bound)
    local lin = nn.Linear(50, 40)
    local lb = 1 / math.sqrt(50)
    _, std, lo, hi = stats(lin.weight)
    assert.is_true(lo >= -lb and hi <= lb and math.abs(std - lb / math.sqrt(3)) < 0.05 * lb)
    assert.are.same({ 40 }, lin.bias.shape)
    assert.is_nil(nn.Linear(3, 4, { bias = false }).bias)
    local ct = nn.ConvTranspose2d(4, 6, { 2, 3 }, { groups = 2 })
    assert.are.same({ 4, 3, 2, 3 }, ct.weight.shape)
    _, _, lo, hi = stats(ct.weight)
    assert.is_true(hi <= 1 / math.sqrt(3 * 6) and lo >= -1 / math.sqrt(3 * 6))
    mean, std = stats(nn.Embedding(100, 50).weight)
    assert.is_true(math.abs(mean) < 0.05 and math.abs(std - 1) < 0.05, ("%g %g"):format(mean, std))
    local bn = nn.BatchNorm2d(3)
    assert.are.same({ 1, 1, 1 }, bn.weight:totable())
    assert.are.same({ 0, 0, 0 }, bn.running_mean:totable())
    assert.are.same({ 1, 1, 1 }, bn.running_var:totable())
    for _, p in ipairs({ conv.weight, conv.bias, lin.weight, bn.weight, bn.bias }) do
      assert.is_true(p.requires_grad)
      assert.are.equal("BUFFER", p.uop.op == "RESHAPE" and p.uop.src[1].op or p.uop.op)
    end
    assert.is_falsy(bn.running_mean.requires_grad)
    assert.are_not.equal(bn.bias.uop, bn.running_mean.uop) -- equal values, buffers of their own
    assert.are_not.equal(bn.weight.uop, bn.running_var.uop)
  end)

  it("Linear, Conv2d, ConvTranspose2d, LayerNorm, GroupNorm and Embedding compute PyTorch's forward", function()
    local lin = nn.Linear(4, 5)
    lin.weight, lin.bias = F(fx.linear.w), F(fx.linear.b)
    check(fx.linear.y, lin(F(fx.linear.x)))
    local c = fx.conv2d_strided
    local conv = nn.Conv2d(4, 6, { 3, 2 }, { stride = { 2, 1 }, padding = { 1, 2 }, dilation = { 2, 1 }, groups = 2 })
    conv.weight, conv.bias = F(c.w), F(c.b)
    check(c.y, conv(F(c.x)))
    local ct = fx.conv_transpose2d_layer
    local ctl = nn.ConvTranspose2d(2, 4, 3, { stride = 2, padding = 1, output_padding = 1, groups = 2 })
    ctl.weight, ctl.bias = F(ct.weight), F(ct.bias)
    check(ct.y, ctl(F(ct.x)))
    local l = fx.layernorm_layer
    local ln = nn.LayerNorm({ 3, 5 })
    ln.weight, ln.bias = F(l.weight), F(l.bias)
    check(l.y, ln(F(l.x)))
    local g = fx.groupnorm
    local gn = nn.GroupNorm(2, 4)
    gn.weight, gn.bias = F(g.weight), F(g.bias)
    check(g.y, gn(F(g.x)))
    local emb = nn.Embedding(6, 3)
    emb.weight = F(fx.embedding.weight)
    check(fx.embedding.y, emb(I(fx.embedding.idx)))
  end)

  it("BatchNorm2d: batch statistics and running-stat updates while training, running stats in eval", function()
    local c = fx.batchnorm2d
    local bn = nn.BatchNorm2d(3)
    bn.weight, bn.bias = F(c.weight), F(c.bias)
    T.training = true
    check(c.y1, bn(F(c.x1)))
    check(c.rm1, bn.running_mean)
    check(c.rv1, bn.running_var)
    check(c.y2, bn(F(c.x2)))
    check(c.rm2, bn.running_mean)
    check(c.rv2, bn.running_var)
    assert.are.equal(2, bn.num_batches_tracked:item())
    T.training = false
    check(c.y3, bn(F(c.x3)))
    check(c.rm2, bn.running_mean) -- eval leaves them
  end)

  it("BatchNorm2d realizes a running-stat update left lazy before building the next", function()
    local c = fx.batchnorm2d
    local bn = nn.BatchNorm2d(3)
    nn.take_pending() -- what other specs left
    T.training = true
    bn(F(c.x1))
    assert.are.equal("ADD", bn.running_mean.uop.op) -- lazy until something realizes it
    bn(F(c.x2))
    check(c.rm2, bn.running_mean)
    assert.are.equal(3, #nn.take_pending())
    assert.are.equal(0, #nn.take_pending())
  end)

  it("Dropout drops only while training; Sequential chains layers and functions", function()
    local d = nn.Dropout(0.5)
    local x = T.ones(3, 3)
    assert.are.equal(x, d(x))
    T.training = true
    lg.manual_seed(1)
    local vals = N.flat(d(T.ones(100)):totable())
    local zeros = 0
    for _, v in ipairs(vals) do zeros = zeros + (v == 0 and 1 or 0) end
    assert.is_true(zeros > 20 and zeros < 80)
    T.training = false
    lg.manual_seed(0)
    local l1, l2 = nn.Linear(3, 4), nn.Linear(4, 2)
    local seq = nn.Sequential(l1, T.relu, l2)
    local inp = T.rand(5, 3)
    N.close(N.flat(l2(l1(inp):relu()):totable()), N.flat(seq(inp):totable()), 1e-6)
    assert.are.equal("Sequential(Linear(3, 4), function, Linear(4, 2))", tostring(seq))
    assert.are.equal("Conv2d(1, 2, {3, 3})", tostring(nn.Conv2d(1, 2, 3)))
  end)

  it("errors name the layer, its position in a Sequential, and the shapes", function()
    local seq = nn.Sequential(nn.Linear(3, 4), nn.Conv2d(4, 2, 3))
    assert.error_matches(function() seq(T.zeros(2, 5)) end,
      "Sequential: [1] Linear: linear: input (2,5) does not match weight (4,3) (out, in): 5 features vs 3", 1, true)
    assert.error_matches(function() nn.BatchNorm2d(3)(T.zeros(2, 4, 2, 2)) end,
      "BatchNorm2d: the input (2,4,2,2) does not fit: expected (N, 3, H, W)", 1, true)
    assert.error_matches(function() nn.LayerNorm(4)(T.zeros(2, 3)) end, "LayerNorm: the input (2,3) does not end in (4)", 1, true)
    assert.error_matches(function() nn.Conv2d(3, 4, 3, { groups = 2 }) end,
      "Conv2d: in_channels 3 and out_channels 4 must be multiples of groups 2", 1, true)
    local bn = nn.BatchNorm2d(3)
    T.training = true
    assert.error_matches(function() bn(T.zeros(1, 3, 1, 1)) end,
      "BatchNorm2d: expected more than 1 value per channel when training, got input (1,3,1,1)", 1, true)
    assert.error_matches(function() nn.Conv2d(3, 4, 3, { pad = 1 }) end,
      "Conv2d: unknown option pad (options: stride, padding, dilation, groups, bias)", 1, true)
    assert.error_matches(function() nn.Linear(3.5, 2) end, "Linear: in_features is 3.5, expected an integer >= 0", 1, true)
    assert.error_matches(function() nn.Sequential(nn.Linear(1, 1), 3) end,
      "Sequential: item 2 is a number, expected a layer or a function", 1, true)
  end)
end)

describe("parameters and state_dict", function()
  it("walk nested tables in key order (positions first), skip _keys; parameters lists shared tensors once", function()
    lg.manual_seed(0)
    local shared = nn.Linear(2, 2)
    local model = {
      encoder = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)),
      head = shared,
      tied = shared,
      blocks = { nn.LayerNorm(2), { inner = nn.Linear(2, 1, { bias = false }) } },
      _cache = T.zeros(3),
      scale = 2,
    }
    local names = {}
    for k in pairs(nn.state_dict(model)) do names[#names + 1] = k end
    table.sort(names)
    assert.are.same({ "blocks.1.bias", "blocks.1.weight", "blocks.2.inner.weight",
      "encoder.1.bias", "encoder.1.weight", "encoder.2.bias", "encoder.2.num_batches_tracked", "encoder.2.running_mean",
      "encoder.2.running_var", "encoder.2.weight", "head.bias", "head.weight", "tied.bias", "tied.weight" }, names)
    local sd = nn.state_dict(model)
    local want = { sd["blocks.1.bias"], sd["blocks.1.weight"], sd["blocks.2.inner.weight"], sd["encoder.1.bias"],
      sd["encoder.1.weight"], sd["encoder.2.bias"], sd["encoder.2.weight"], sd["head.bias"], sd["head.weight"] }
    local got = nn.parameters(model)
    assert.are.equal(#want, #got)
    for i = 1, #want do assert.are.equal(want[i], got[i], "parameter " .. i) end
    assert.are.equal(shared.weight, sd["head.weight"])
    local list = nn.parameters({ nn.Linear(1, 1), nn.Linear(1, 1) })
    assert.are.same({ 1 }, list[1].shape) -- "1.bias" before "1.weight"
    local loop = { layer = nn.Linear(1, 1) }
    loop.layer.parent = loop -- a cycle is walked once
    assert.are.equal(2, #nn.parameters(loop))
    assert.error_matches(function() nn.parameters(T.zeros(2)) end, "nn.parameters: expected a table of layers, got a Tensor", 1, true)
  end)
end)
