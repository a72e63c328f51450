-- lg.optim against torch.optim: six steps of each optimizer on loss = sum((p - target)^2), whose
-- gradient 2 (p - target) is set by hand each step, with the learning rate halved before step 4.
local lg = require "luagrad"
local N = require "nn.helpers"
local T, optim, fx, F, check = lg.Tensor, lg.optim, N.fx, N.F, N.check

local CLASS = { sgd = "SGD", sgd_momentum = "SGD", sgd_nesterov = "SGD", adam = "Adam", adam_wd = "Adam", adamw = "AdamW" }

local function setup()
  local ps, tg = {}, {}
  for i, f in ipairs(fx.optim_start) do ps[i], tg[i] = F(f):realize(), F(fx.optim_target[i]) end
  return ps, tg
end

local function set_grads(ps, tg)
  for i, p in ipairs(ps) do p.grad = (p - tg[i]) * 2 end
end

describe("optimizers", function()
  for _, case in ipairs(fx.optim) do
    it(case.name .. " matches PyTorch's parameters step by step", function()
      local ps, tg = setup()
      local opt = optim[CLASS[case.name]](ps, case.opts)
      for step, want in ipairs(case.params) do
        if step == 4 then opt.lr = opt.lr * 0.5 end
        opt:zero_grad()
        set_grads(ps, tg)
        opt:step()
        for i, p in ipairs(ps) do check(want[i], p, 1e-5, ("%s step %d param %d"):format(case.name, step, i)) end
      end
    end)
  end

  it("a step is one realize_all of parameters and states; from step 3 on, its kernels are planned already", function()
    local ps, tg = setup()
    local opt = optim.Adam(ps, { lr = 0.01, betas = { 0.85, 0.995 } }) -- betas no other spec uses
    local calls, renders, early, real, render = 0, 0, 0, T.realize_all, lg.core.render
    T.realize_all = function(list)
      calls = calls + 1
      assert.are.equal(2 + 3 * #ps, #list) -- beta1^t, beta2^t, and each parameter with its m and v
      return real(list)
    end
    lg.core.render = function(...) -- called once per kernel of a plan that is not cached
      renders = renders + 1
      return render(...)
    end
    local ok, err = pcall(function()
      for step = 1, 4 do
        if step == 3 then early, renders = renders, 0 end
        if step == 4 then opt.lr = 0.02 end -- a new value, not a new kernel
        set_grads(ps, tg)
        opt:step()
      end
    end)
    T.realize_all, lg.core.render = real, render
    assert(ok, err)
    assert.are.equal(4, calls)
    assert.is_true(early > 0)
    assert.are.equal(0, renders)
    for _, p in ipairs(ps) do assert.are.equal("BUFFER", p.uop.src[1].op) end
  end)

  it("skips parameters without a grad; zero_grad drops the grads", function()
    local ps, tg = setup()
    local before = N.flat(ps[2]:totable())
    local opt = optim.SGD(ps, { lr = 0.1, momentum = 0.9 })
    ps[1].grad = (ps[1] - tg[1]) * 2
    opt:step()
    N.close(before, N.flat(ps[2]:totable()), 0)
    check(fx.optim[1].params[1][1], ps[1]) -- a first momentum step is plain SGD (fx.optim[1]: lr 0.1)
    opt:zero_grad()
    assert.is_nil(ps[1].grad)
    opt:step() -- nothing to do
    check(fx.optim[1].params[1][1], ps[1])
  end)

  it("realizes BatchNorm2d's lazy running statistics with the step", function()
    local bn = lg.nn.BatchNorm2d(2)
    T.training = true
    bn(T.rand(3, 2, 2, 2))
    T.training = nil
    local opt = optim.SGD(lg.nn.parameters(bn), { lr = 0.1 })
    for _, p in ipairs(lg.nn.parameters(bn)) do p.grad = T.ones(2) end
    opt:step()
    assert.are.equal("BUFFER", bn.running_mean.uop.src[1].op)
    N.close({ 0.9, 0.9 }, bn.weight:totable(), 1e-7)
  end)

  it("rejects bad parameters, options and grads, naming them", function()
    local p = T.zeros(2, 3)
    assert.error_matches(function() optim.SGD(p) end, "SGD: params is a Tensor, expected a list of tensors", 1, true)
    assert.error_matches(function() optim.Adam({ p, 3 }) end, "Adam: parameter 2 is a number, expected a Tensor", 1, true)
    assert.error_matches(function() optim.SGD({ T({ 1, 2 }) }) end, "SGD: parameter 1 has dtype int32, expected a float dtype", 1, true)
    assert.error_matches(function() optim.SGD({ p }, { lr = -1 }) end, "SGD: lr is -1, expected a number >= 0", 1, true)
    assert.error_matches(function() optim.Adam({ p }, { betas = { 0.9, 1 } }) end, "Adam: betas[2] is 1, expected a number >= 0 and < 1", 1, true)
    assert.error_matches(function() optim.Adam({ p }, { amsgrad = true }) end,
      "Adam: unknown option amsgrad (options: lr, betas, eps, weight_decay)", 1, true)
    assert.error_matches(function() optim.SGD({ p }, { nesterov = true }) end, "SGD: nesterov needs a momentum > 0 and dampening 0", 1, true)
    local opt = optim.AdamW({ p })
    assert.error_matches(function() opt.lr = "fast" end, "AdamW: lr is fast, expected a number >= 0", 1, true)
    assert.are.equal(0.001, opt.lr)
    -- a grad of the wrong shape: refused by the step, or already by the grad field (autograd)
    local ok, err = pcall(function()
      p.grad = T.zeros(3)
      opt:step()
    end)
    assert(not ok and err:find("(3)", 1, true) and err:find("(2,3)", 1, true), err)
  end)
end)
