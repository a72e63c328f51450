-- backward(), .grad, requires_grad, detach, no_grad and lg.grad: the contract around the
-- gradient rules (their math is in ops_spec.lua). Expected values are worked out by hand or by
-- plain Lua here.
local lg = require "luagrad"
local realize = require "luagrad.realize"
local T = lg.Tensor

local function is_buffer(t)
  local u = t.uop
  return u.op == "BUFFER" or (u.op == "RESHAPE" and u.src[1].op == "BUFFER")
end

describe("backward", function()
  it("fills .grad of each leaf of (x:matmul(w) + b):relu():sum() in one realize_all", function()
    local xv = { { 1, 2, -1 }, { 0.5, -2, 3 } }
    local wv = { { 1, -1 }, { 2, 0.5 }, { -3, 1 } }
    local bv = { 4.0, -1 }
    local x = T(xv, { requires_grad = true })
    local w = T(wv, { requires_grad = true })
    local b = T(bv, { requires_grad = true })
    local loss = (x:matmul(w) + b):relu():sum()
    -- plain Lua: h = x w + b, m = (h > 0)
    local m = {}
    for i = 1, 2 do
      m[i] = {}
      for j = 1, 2 do
        local h = bv[j]
        for k = 1, 3 do h = h + xv[i][k] * wv[k][j] end
        m[i][j] = h > 0 and 1 or 0
      end
    end
    local gx, gw, gb = {}, {}, {}
    for i = 1, 2 do
      gx[i] = {}
      for k = 1, 3 do gx[i][k] = m[i][1] * wv[k][1] + m[i][2] * wv[k][2] end
    end
    for k = 1, 3 do gw[k] = { xv[1][k] * m[1][1] + xv[2][k] * m[2][1], xv[1][k] * m[1][2] + xv[2][k] * m[2][2] } end
    for j = 1, 2 do gb[j] = m[1][j] + m[2][j] end

    local calls, real = 0, T.realize_all
    T.realize_all = function(list)
      calls = calls + 1
      return real(list)
    end
    local k0 = realize.kernels_run
    local ok, err = pcall(loss.backward, loss)
    T.realize_all = real
    assert(ok, err)
    assert.are.equal(1, calls)
    assert.is_true(realize.kernels_run - k0 <= 6) -- the forward, the masked gradient they share, one per
    -- gradient, the loss
    for _, t in ipairs({ x, w, b }) do assert.is_true(is_buffer(t.grad)) end
    local k1 = realize.kernels_run
    loss:item() -- realized with the gradients
    assert.are.equal(k1, realize.kernels_run)
    assert.are.same(gx, x.grad:totable())
    assert.are.same(gw, w.grad:totable())
    assert.are.same(gb, b.grad:totable())
  end)

  it("accumulates over calls; t.grad = nil starts again", function()
    local x = T({ 1.5, -2 }, { requires_grad = true })
    local loss = (x * x):sum()
    loss:backward()
    assert.are.same({ 3, -4 }, x.grad:totable())
    loss:backward()
    assert.are.same({ 6, -8 }, x.grad:totable())
    x.grad = nil
    ;(x * 3):sum():backward()
    assert.are.same({ 3, 3 }, x.grad:totable())
  end)

  it("takes a gradient for a non-scalar output and refuses to guess one", function()
    local x = T({ { 1, 2 }, { 3, 4 } }, { requires_grad = true, dtype = lg.float32 })
    local y = x * x
    assert.has_error(function() y:backward() end,
      "backward: a gradient can be left out only for a one-element output, this one has shape (2,2); pass one of that shape")
    assert.has_error(function() y:backward(T({ 1, 2 })) end, "backward: the gradient has shape (2), the output (2,2)")
    assert.has_error(function() y:backward("x") end, "backward: the gradient is a string, expected a Tensor or a number")
    y:backward(T({ { 1, 0 }, { 0, -1 } }))
    assert.are.same({ { 2, 0 }, { 0, -8 } }, x.grad:totable())
    x.grad = nil
    y:backward(0.5)
    assert.are.same({ { 1, 2 }, { 3, 4 } }, x.grad:totable())
    local one = T({ { 2.5 } }, { requires_grad = true })
    one:backward()
    assert.are.same({ { 1 } }, one.grad:totable())
  end)

  it("errors when the output depends on no tensor with requires_grad, or is not float", function()
    local x = T({ 1.0, 2.0 })
    assert.has_error(function() x:sum():backward() end,
      "backward: the output does not depend on any tensor with requires_grad")
    local w = T({ 1.0, 2.0 }, { requires_grad = true })
    assert.has_error(function() w:detach():sum():backward() end,
      "backward: the output does not depend on any tensor with requires_grad")
    assert.has_error(function() w:int():sum():backward() end,
      "backward: the output has dtype int32; only float outputs have gradients")
  end)

  it("gives zeros to a leaf reached only through integer or piecewise constant paths", function()
    local x = T({ 1.25, -2.5, 3.75 }, { requires_grad = true })
    local other = T({ 1.0, 1.0, 1.0 }, { requires_grad = true })
    ;(x:floor() + x:int():float() + x:gt(0):float()):sum():backward()
    assert.are.same({ 0, 0, 0 }, x.grad:totable())
    assert.is_nil(other.grad) -- not in the graph: untouched
    x.grad = nil
    ;(x:int():float() * 2 + x):sum():backward()
    assert.are.same({ 1, 1, 1 }, x.grad:totable())
  end)

  it("splits the gradient of max among ties, and of maximum half and half", function()
    local x = T({ 1, 3, 3, -1 }, { dtype = lg.float32, requires_grad = true })
    x:max():backward()
    assert.are.same({ 0, 0.5, 0.5, 0 }, x.grad:totable())
    x.grad = nil
    x:maximum(3):sum():backward()
    assert.are.same({ 0, 0.5, 0.5, 0 }, x.grad:totable())
  end)

  it("flows through tensors realized before it (loss:item() first)", function()
    local w = T({ 1.0, 2.0 }, { requires_grad = true })
    local h = (w * 3):realize()
    local loss = (h * w):sum()
    h = nil
    collectgarbage()
    assert.are.equal(15, loss:item())
    loss:backward()
    assert.are.same({ 6, 12 }, w.grad:totable())
  end)

  it("stops at a leaf updated and realized outside no_grad", function()
    local p = T({ 1.0, -2.0 }, { requires_grad = true })
    for _ = 1, 3 do
      p.grad = nil
      ;(p * p):sum():backward()
      p:assign(p - 0.25 * p.grad):realize()
    end
    assert.are.same({ 0.125, -0.25 }, p:totable())
    p.grad = nil
    ;(p * p):sum():backward()
    assert.are.same({ 0.25, -0.5 }, p.grad:totable())
  end)

  it("keeps the leaf's dtype", function()
    for _, d in ipairs({ lg.float32, lg.float16, lg.float64 }) do
      local x = T({ 0.5, 2 }, { dtype = d, requires_grad = true })
      ;(x:exp() * x):sum():backward()
      assert.are.equal(d, x.grad.dtype)
      local g = x.grad:totable()
      local tol = d == lg.float16 and 2e-2 or 1e-5
      for i, v in ipairs({ 0.5, 2 }) do assert.is_true(math.abs(g[i] - math.exp(v) * (1 + v)) < tol * g[i]) end
    end
  end)
end)

describe("requires_grad", function()
  it("is false by default, can be set later and cleared, and only on float tensors", function()
    local x = T({ 1.0, 2.0 })
    assert.is_false(x.requires_grad)
    x.requires_grad = true
    assert.is_true(x.requires_grad)
    ;(x * x):sum():backward()
    assert.are.same({ 2, 4 }, x.grad:totable())
    x.requires_grad = false
    assert.is_false(x.requires_grad)
    assert.has_error(function() (x * x):sum():backward() end,
      "backward: the output does not depend on any tensor with requires_grad")
    local i = T({ 1, 2 })
    assert.has_error(function() i.requires_grad = true end,
      "requires_grad: only float tensors can require gradients, this one is int32")
    assert.has_error(function() T({ 1, 2 }, { requires_grad = true }) end,
      "requires_grad: only float tensors can require gradients, this one is int32")
  end)

  it("is true for a tensor computed from one that requires grad, false through detach", function()
    local w = T({ 1.0, 2.0 }, { requires_grad = true })
    assert.is_true((w * 2).requires_grad)
    assert.is_false((w:detach() * 2).requires_grad)
    assert.is_false(T(w).requires_grad) -- a new tensor, as torch.tensor(t)
  end)

  it("keeps equal leaves apart (two zero biases)", function()
    local b1 = T.zeros(2, { requires_grad = true })
    local b2 = T.zeros(2, { requires_grad = true })
    local c = T.full({ 2 }, 1.0, { requires_grad = true })
    assert.is_true(is_buffer(b1) and is_buffer(b2) and is_buffer(c))
    local x, y = T({ 1.0, 2.0 }), T({ 10.0, 20.0 })
    ;(b1 * x + b2 * y + c):sum():backward()
    assert.are.same({ 1, 2 }, b1.grad:totable())
    assert.are.same({ 10, 20 }, b2.grad:totable())
    assert.are.same({ 1, 1 }, c.grad:totable())
  end)

  it("on a tensor computed from leaves gives it a .grad and lets gradients through", function()
    local w = T({ 1.0, -2.0 }, { requires_grad = true })
    local h = w * 2
    h.requires_grad = true
    ;(h * h):sum():backward()
    assert.are.same({ 4, -8 }, h.grad:totable())
    assert.are.same({ 8, -16 }, w.grad:totable())
  end)
end)

describe("grad field", function()
  it("takes nil or a tensor of the leaf's shape and dtype", function()
    local x = T({ 1.0, 2.0 }, { requires_grad = true })
    assert.is_nil(x.grad)
    x.grad = T({ 5.0, 6.0 })
    ;(x * 1):sum():backward()
    assert.are.same({ 6, 7 }, x.grad:totable())
    assert.has_error(function() x.grad = T({ 1.0, 2.0, 3.0 }) end,
      "grad: expected nil or a float32 tensor of shape (2), got a float32 tensor of shape (3)")
    assert.has_error(function() x.grad = 3 end, "grad: expected nil or a float32 tensor of shape (2), got a number")
  end)
end)

describe("detach", function()
  it("is the same value with no gradient flowing back", function()
    local x = T({ 1.5, -3.0 }, { requires_grad = true })
    local d = x:detach()
    assert.are.same(x:totable(), d:totable())
    assert.is_false(d.requires_grad)
    ;(x * d):sum():backward()
    assert.are.same({ 1.5, -3 }, x.grad:totable())
  end)
end)

describe("no_grad", function()
  it("returns fn's results, which carry no gradient", function()
    local w = T({ 1.0, 3.0 }, { requires_grad = true })
    local y, n = lg.no_grad(function(k) return w * k, "other" end, 2)
    assert.are.equal("other", n)
    assert.is_false(y.requires_grad)
    ;(y * w):sum():backward()
    assert.are.same({ 2, 6 }, w.grad:totable()) -- y is a constant: d(y w)/dw = y
  end)

  it("makes an optimizer update of a parameter a leaf", function()
    local p = T({ 1.0, -2.0 }, { requires_grad = true })
    ;(p * p):sum():backward()
    lg.no_grad(function() p:assign(p - 0.25 * p.grad) end)
    assert.is_true(p.requires_grad)
    assert.are.same({ 0.5, -1 }, p:totable())
    p.grad = nil
    local q = T({ 3.0, 3.0 }, { requires_grad = true })
    local after = lg.no_grad(function()
      local v = q * 1
      v[1] = 7
      return v
    end)
    ;(p * p * 3):sum():backward()
    assert.are.same({ 3, -6 }, p.grad:totable()) -- the new value only, not its history
    assert.has_error(function() after:sum():backward() end,
      "backward: the output does not depend on any tensor with requires_grad")
  end)

  it("nests, passes errors on, and tracks again afterwards", function()
    local w = T({ 2.0 }, { requires_grad = true })
    local a, b = lg.no_grad(function()
      local inner = lg.no_grad(function() return w * 2 end)
      return inner, w * 3
    end)
    assert.is_false(a.requires_grad or b.requires_grad)
    assert.has_error(function() lg.no_grad(function() error("boom", 0) end) end, "boom")
    local y = w * 5
    assert.is_true(y.requires_grad)
    y:sum():backward()
    assert.are.same({ 5 }, w.grad:totable())
  end)
end)

describe("lg.grad", function()
  it("gives lazy gradients without touching .grad, zeros for unused inputs", function()
    local x = T({ 1.0, 2.0 }, { requires_grad = true })
    local z = T({ 4.0 })
    local g = lg.grad((x * x):sum(), { x, z })
    assert.is_nil(x.grad)
    assert.are.same({ 2, 4 }, g[1]:totable())
    assert.are.same({ 0 }, g[2]:totable())
    assert.has_error(function() lg.grad(x:sum(), { T({ 1, 2 }) }) end,
      "grad: input 1 has dtype int32; only float tensors have gradients")
    assert.has_error(function() lg.grad(x:sum(), x) end, "grad: inputs is a table, expected a list of Tensors")
  end)

  it("differentiates its own results (higher order)", function()
    local x = T({ 1.0, -2.0, 0.5 }, { dtype = lg.float64, requires_grad = true })
    local g1 = lg.grad((x ^ 3):sum(), { x })[1]
    assert.are.same({ 3, 12, 0.75 }, g1:totable())
    local g2 = lg.grad(g1:sum(), { x })[1]
    assert.are.same({ 6, -12, 3 }, g2:totable())
    local s = x:sin()
    local h = lg.grad(lg.grad(s:sum(), { x })[1]:sum(), { x })[1] -- -sin
    local want = s:totable()
    for i, v in ipairs(h:totable()) do assert.is_true(math.abs(v + want[i]) < 1e-12) end
  end)
end)

describe("gradient rules", function()
  it("come from gradient.lua on the rules path and can be reloaded", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
    local f = assert(io.open(dir .. "/gradient.lua", "w"))
    f:write('local rules = dofile(os.getenv("LG_ROOT") .. "/rewrite_rules/gradient.lua")\n',
      "rules.NEG = function(g) return g * 10 end\nreturn rules\n")
    f:close()
    local x = T({ 1.0 })
    lg.rules.path({ dir })
    local ok, err = pcall(function()
      lg.autograd.reload()
      assert.are.same({ 10 }, lg.grad((-x):sum(), { x })[1]:totable())
    end)
    lg.rules.path({})
    lg.autograd.reload()
    os.remove(dir .. "/gradient.lua")
    os.remove(dir)
    assert(ok, err)
    assert.are.same({ -1 }, lg.grad((-x):sum(), { x })[1]:totable())
  end)

  it("name the rule that gives a wrong gradient, and an op without one", function()
    local rules, x = lg.autograd.rules, T({ 1.0, 2.0 })
    local neg = rules.NEG
    rules.NEG = function(g) return g:sum() end
    local ok, err = pcall(lg.grad, (-x):sum(), { x })
    rules.NEG = nil
    local ok2, err2 = pcall(lg.grad, (-x):sum(), { x })
    rules.NEG = neg
    assert.is_false(ok or ok2)
    assert.matches("backward: the NEG rule gave a float32 tensor of shape () for source 1, expected a float32 tensor of shape (2)", err, 1, true)
    assert.matches("backward: no gradient rule for NEG (rewrite_rules/gradient.lua)", err2, 1, true)
  end)
  it("take a composite's gradient from its registered rule (Tensor.func)", function()
    T.func_grads.scaled = function(g, _, params, a, b) return g * params[1], b:sum():reshape(1) end
    local x, w = T({ 1.0, 2.0, 3.0 }, { requires_grad = true }), T({ 4.0 }, { requires_grad = true })
    local y = T.func("scaled", { 5 }, x * w, x, w)
    assert.are.same({ 4, 8, 12 }, y:totable())                    -- the value of x * w
    y:sum():backward()
    assert.are.same({ 5, 5, 5 }, x.grad:totable())                -- from the rule, not w
    assert.are.same({ 4 }, w.grad:totable())
    T.func_grads.scaled = nil
    assert.matches("no gradient for the function scaled",
      select(2, pcall(lg.grad, T.func("scaled", {}, x * 1, x):sum(), { x })), 1, true)
  end)
end)
