-- lg.jit: replays give what running the function gives (a training step with batch norm and
-- Adam, mixed with other steps; an evaluation; a recurrence; random numbers), without running
-- it; what a replay cannot do again is an error.
local lg = require "luagrad"
local H = require "ops.helpers"
local N = require "nn.helpers"
local T, nn = lg.Tensor, lg.nn

-- a small CNN and its Adam; lg.manual_seed makes its weights and the batches the same each time
local function setup()
  lg.manual_seed(7)
  local net = nn.Sequential(nn.Conv2d(1, 4, 3, { padding = 1 }), nn.BatchNorm2d(4), T.relu,
    function(x) return x:max_pool2d(2):flatten(2) end, nn.Linear(4 * 4 * 4, 3))
  local batches = {}
  for i = 1, 8 do
    batches[i] = { T.randn(6, 1, 8, 8):realize(), T.randint(1, 4, { 6 }, { dtype = lg.int32 }):realize() }
  end
  return net, lg.optim.Adam(nn.parameters(net), { lr = 0.01 }), batches
end

-- the model's parameters and running statistics, flat
local function state(net)
  local out = {}
  for name, t in pairs(nn.state_dict(net)) do out[name] = H.flat(t:totable()) end
  return out
end

-- trains on the batches with step(net, opt) -> fn(x, y) -> loss; halves lr before step 6
local function train(make_step)
  local net, opt, batches = setup()
  T.training = true
  local step, losses = make_step(net, opt), {}
  for i, b in ipairs(batches) do
    if i == 6 then opt.lr = opt.lr / 2 end
    losses[i] = step(b[1], b[2]):item()
  end
  T.training = nil
  return losses, state(net)
end

local function plain_step(net, opt)
  return function(x, y)
    local loss = net(x):cross_entropy(y)
    opt:zero_grad()
    loss:backward()
    opt:step()
    return loss
  end
end

-- the losses and the state of a run match the ones wanted
local function same_run(want_losses, want, losses, got)
  H.close(want_losses, losses, 1e-6, "losses")
  for name, w in pairs(want) do H.close(w, got[name], 1e-6, name) end
end

describe("lg.jit", function()
  it("replays a training step: the same losses, parameters and running statistics as running it", function()
    local calls = 0
    local want_losses, want = train(plain_step)
    local losses, got = train(function(net, opt)
      local step = plain_step(net, opt)
      return lg.jit(function(x, y)
        calls = calls + 1
        return step(x, y)
      end)
    end)
    assert.are.equal(3, calls) -- run, recorded twice, then replayed
    same_run(want_losses, want, losses, got)
  end)

  it("goes on from the same state after steps of another batch size and steps without the jit", function()
    local function mixed(jitted)
      local net, opt, batches = setup()
      T.training = true
      local step = plain_step(net, opt)
      local fast = jitted and lg.jit(step) or step
      local losses = {}
      for i = 1, 20 do
        local b = batches[(i - 1) % #batches + 1]
        local x, y = b[1], b[2]
        if i % 4 == 0 then x, y = x[{ { 1, 4 } }], y[{ { 1, 4 } }] end -- a signature of its own
        losses[i] = ((i == 10 or i == 18) and step or fast)(x, y):item() -- without the jit
      end
      T.training = nil
      local grads = {} -- the last step's (a replay's)
      for i, p in ipairs(nn.parameters(net)) do grads[i] = H.flat(p.grad:totable()) end
      return losses, state(net), grads
    end
    local want_losses, want, want_grads = mixed(false)
    local losses, got, grads = mixed(true)
    for i, g in ipairs(want_grads) do H.close(g, grads[i], 1e-6, "grad " .. i) end
    same_run(want_losses, want, losses, got)
  end)

  it("a jitted evaluation reads the weights and running statistics that training steps gave new values", function()
    local function run(jitted)
      local net, opt, batches = setup()
      local train = plain_step(net, opt)
      local eval = function(x) return lg.no_grad(function() return net(x) end) end
      if jitted then train, eval = lg.jit(train), lg.jit(eval) end
      local outs = {}
      for i = 1, 10 do
        local b = batches[(i - 1) % #batches + 1]
        T.training = true
        train(b[1], b[2])
        T.training = nil
        outs[i] = H.flat(eval(batches[1][1]):totable())
      end
      return outs
    end
    local want, got = run(false), run(true)
    for i = 1, #want do H.close(want[i], got[i], 1e-6, "evaluation " .. i) end
  end)

  it("a replay builds no graph and schedules nothing: it launches the recorded kernels", function()
    local net, opt, batches = setup()
    T.training = true
    local step = lg.jit(plain_step(net, opt))
    for i = 1, 3 do step(batches[i][1], batches[i][2]) end
    local realize_all, realizes = T.realize_all, 0
    T.realize_all = function(list)
      realizes = realizes + 1
      return realize_all(list)
    end
    local ok, n = pcall(N.kernels, function() step(batches[4][1], batches[4][2]) end)
    T.realize_all, T.training = realize_all, nil
    assert(ok, n)
    assert.are.equal(0, realizes)
    assert.is_true(n > 10)
  end)

  it("a call with arguments of another shape runs the function; the replays go on after it", function()
    local f = lg.jit(function(x, k) return x * k + 1 end)
    local k = T({ 2.0 })
    for i = 1, 5 do
      local n = i == 4 and 3 or 2
      H.close(H.flat((T.full({ n }, i) * 2 + 1):totable()), H.flat(f(T.full({ n }, i), k):totable()), 0, "call " .. i)
    end
  end)

  it("one tensor passed twice is a signature of its own", function()
    local f = lg.jit(function(a, b) return a * 2 + b end)
    local x = T({ 1.0, 2.0 })
    for _ = 1, 4 do f(x, x) end
    H.close({ 12, 24 }, H.flat(f(T({ 3.0, 6.0 }), T({ 6.0, 12.0 })):totable()), 0, "two tensors")
    H.close({ 3, 6 }, H.flat(f(x, x):totable()), 0, "one tensor twice")
  end)

  it("passes a result back in as an argument (a recurrence)", function()
    local f = lg.jit(function(h) return h * 2 + 1 end)
    local h, want = T({ 0.0, 1.0 }), { 0, 1 }
    for _ = 1, 6 do
      h = f(h)
      want = { want[1] * 2 + 1, want[2] * 2 + 1 }
      H.close(want, H.flat(h:totable()), 0, "h")
    end
  end)

  it("draws new random numbers in each replay, the numbers running the function draws (dropout)", function()
    local function run(jitted)
      lg.manual_seed(3)
      local f = function(x) return (x + T.rand(4)):dropout(0.5) end
      if jitted then f = lg.jit(f) end
      local x, outs = T.ones(4), {}
      T.training = true
      for i = 1, 6 do outs[i] = H.flat(f(x):totable()) end
      T.training = nil
      outs[7] = H.flat(T.rand(3):totable()) -- the generator goes on from the same draw
      return outs
    end
    local want, got = run(false), run(true)
    for i = 1, #want do H.close(want[i], got[i], 0, "call " .. i) end
  end)

  it("a tensor made from host values that change each call is an error, not a repeated value", function()
    local n = 0
    local f = lg.jit(function(x)
      n = n + 1
      return x + T({ n, n })
    end)
    local x = T.zeros(2)
    f(x)
    f(x)
    local ok, err = pcall(f, x)
    assert.is_false(ok)
    assert.matches("jit: kernel 1 (E_2) reads, as its input 2, a buffer that is neither an argument", err, 1, true)
    assert.matches("Tensor.new of numbers that change", err, 1, true)
  end)

  it("training and evaluation are signatures of their own", function()
    local f = lg.jit(function(x) return x:dropout(0.5) end)
    local x = T.ones(64)
    T.training = true
    for _ = 1, 4 do f(x) end
    T.training = nil
    local ok, err = pcall(function() H.close(H.flat(x:totable()), H.flat(f(x):totable()), 0, "eval") end)
    T.training = nil
    assert(ok, err)
  end)

  it("state kept in a Lua variable, an assigned argument and too many signatures are errors", function()
    local h = T.zeros(2)
    local f = lg.jit(function(x)
      h = h + x
      return h
    end)
    f(T.ones(2))
    f(T.ones(2))
    local ok, err = pcall(f, T.ones(2))
    assert.is_false(ok)
    assert.matches("or keeps a value from call to call in a Lua variable", err, 1, true)

    local g = lg.jit(function(x) return x:assign(x * 2) end)
    g(T.ones(2))
    g(T.ones(2))
    ok, err = pcall(g, T.ones(2))
    assert.is_false(ok)
    assert.matches("jit: fn assigns its argument 1", err, 1, true)

    local k = lg.jit(function(x, c) return x * c end)
    for c = 1, 64 do k(T.ones(1), c) end
    ok, err = pcall(k, T.ones(1), 65)
    assert.is_false(ok)
    assert.matches("jit: fn was called with 65 signatures", err, 1, true)
  end)

  it("JIT=0 runs the function at every call", function()
    local lua = os.getenv("LUA") or "lua5.4"
    local chunk = [[
      local lg = require "luagrad"
      local calls = 0
      local f = lg.jit(function(x) calls = calls + 1; return x + 1 end)
      for _ = 1, 5 do f(lg.Tensor({ 1.0 })) end
      print(calls)]]
    for env, want in pairs({ ["JIT=0"] = "5", ["JIT=1"] = "3" }) do
      local p = assert(io.popen(("env %s %s -e %q 2>&1"):format(env, lua, chunk)))
      local out = p:read("a")
      assert(p:close(), out)
      assert.are.equal(want, out:match("%S+"), env)
    end
  end)

  it("results must be tensors; arguments tensors or plain values", function()
    local f = lg.jit(function(x) return x:sum():item() end)
    local ok, err = pcall(f, T({ 1, 2 }))
    assert.is_false(ok)
    assert.matches("jit: result 1 is a number: a replay cannot compute Lua values again, return tensors", err, 1, true)
    ok, err = pcall(lg.jit(function(x) return x end), {})
    assert.is_false(ok)
    assert.matches("jit: argument 1 is a table", err, 1, true)
    ok, err = pcall(lg.jit, 3)
    assert.is_false(ok)
    assert.matches("jit: expected a function, got a number", err, 1, true)
  end)
end)
