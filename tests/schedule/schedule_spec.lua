-- The scheduler: how many kernels a computation becomes, and what they read.
local lg = require "luagrad"
local schedule = require "luagrad.schedule"
local T = lg.Tensor

local function kernels(t) return #schedule.schedule({ t.uop }) end

describe("schedule", function()
  local a, b, c = T({ { 1, 2 }, { 3, 4 } }), T({ { 5, 6 }, { 7, 8 } }), T({ 1, 2 })

  it("fuses an elementwise chain into one kernel", function()
    assert.are.equal(1, kernels(a * b + c))
    assert.are.equal(1, kernels(((a + 1) * 2 - b):relu()))
  end)

  it("fuses elementwise producers into the reduction", function()
    assert.are.equal(1, kernels((a * b):sum()))
    assert.are.equal(1, kernels((a * b):sum(2)))
  end)

  it("runs no kernel for a reshape of a realized tensor", function()
    local r = a:realize():reshape(4)
    assert.are.equal(0, kernels(r))
    assert.are.equal(0, kernels(r:reshape(2, 2)))
  end)

  it("makes one kernel of a permute made contiguous", function()
    assert.are.equal(1, kernels(a:permute(2, 1):contiguous()))
  end)

  it("reads each input buffer once per kernel", function()
    local ks = schedule.schedule({ (a * a + a).uop })
    assert.are.equal(1, #ks)
    assert.are.equal(1, #ks[1].inputs)
  end)

  it("fuses elementwise consumers of a reduction that is not broadcast", function()
    local m = ((a:reshape(2, 1, 2) * b:permute(2, 1):reshape(1, 2, 2)):sum(3) + c):relu()
    assert.are.equal(1, kernels(m))
    assert.are.same({ { 20, 24 }, { 44, 52 } }, m:totable()) -- a @ b + c
  end)

  it("realizes a reduction that is broadcast back: x - max(x) is 2 kernels", function()
    assert.are.equal(2, kernels(a - a:max(2, true):expand(2, 2)))
    local e = (a - a:max(2, true):expand(2, 2))
    assert.are.same({ { -1, 0 }, { -1, 0 } }, e:totable())
  end)

  it("computes a reduction that two outputs share once", function()
    local s = (a * 2):sum(1)
    local ks = schedule.schedule({ (s + 1).uop, (s * 3).uop })
    assert.are.equal(3, #ks) -- the sum, then each output reads it
    local x, y = s + 1, s * 3
    T.realize_all({ x, y })
    assert.are.same({ 9, 13 }, x:totable())
    assert.are.same({ 24, 36 }, y:totable())
  end)

  it("realizes an expensive elementwise value before broadcasting it, not a cheap one", function()
    local x = T({ 1, 2, 3 }, { dtype = lg.float32 })
    local cheap = (x * 2):reshape(3, 1):expand(3, 4):sum(1)
    assert.are.equal(1, kernels(cheap))
    local dear = ((x - 1) * 2 + 3):relu():reshape(3, 1):expand(3, 4):sum(1)
    assert.are.equal(2, kernels(dear))
    assert.are.same({ 15, 15, 15, 15 }, dear:totable())
  end)

  it("fuses a value made cheap by the buffers below it into its readers (no bool buffer for max pooling's gradient)", function()
    local x = T.randn(2, 3, 8, 8):realize()
    x.requires_grad = true
    local act = (x * 2 + 1):relu() -- costly: it gets a buffer
    local dx = lg.grad(act:max_pool2d(2), { x }, T.ones(2, 3, 4, 4))[1]
    for _, k in ipairs(schedule.schedule({ dx.uop })) do
      assert.are_not.equal(lg.bool, k.output.dtype)
    end
  end)

  it("lowers a FUNCTION to its value: its inputs are only there for gradients", function()
    local f = T.func("any", { 1 }, a * b + c, a, b)
    assert.are.equal(1, kernels(f))
    assert.are.same({ { 6, 14 }, { 22, 34 } }, f:totable())
  end)

  it("makes softmax at most 3 kernels", function()
    local x = T({ { 1, 2, 3 }, { 4, 5, 6 } }, { dtype = lg.float32 })
    assert.is_true(kernels(x:softmax(-1)) <= 3)
  end)
end)

describe("memory", function()
  it("holds steady while tensors and kernels are made and dropped", function()
    local core = lg.core
    local function step()
      local a = T.rand(64, 64)
      local b = ((a * 2 + 1):sum(1) + a:max(2)):realize()
      return b:numel()
    end
    for _ = 1, 5 do step() end -- compile and warm up
    collectgarbage()
    collectgarbage()
    local nodes, bufs = core.live_nodes(), core.device_stats("CPU").buffers
    for _ = 1, 50 do step() end
    collectgarbage()
    collectgarbage()
    assert.are.equal(nodes, core.live_nodes())
    assert.are.equal(bufs, core.device_stats("CPU").buffers)
  end)
end)
