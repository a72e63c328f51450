-- cat, stack, tile, split, chunk, indexing, assignment into an index, gather: against plain Lua.
local lg = require "luagrad"
local H = require "ops.helpers"
local T = lg.Tensor

local function grid(n, m, base) -- {{base+1, ...}, ...}: n rows of m
  local t = {}
  for i = 1, n do
    t[i] = {}
    for j = 1, m do t[i][j] = (base or 0) + (i - 1) * m + j end
  end
  return t
end

describe("joining and splitting", function()
  it("concatenates along any axis, promoting dtypes", function()
    local a, b = T(grid(2, 3)), T(grid(1, 3, 100))
    assert.are.same({ { 1, 2, 3 }, { 4, 5, 6 }, { 101, 102, 103 } }, T.cat({ a, b }):totable())
    local c = T(grid(2, 1, 50)):float()
    local r = T.cat({ a, c, a }, -1)
    assert.are.equal(lg.float32, r.dtype)
    assert.are.same({ { 1, 2, 3, 51, 1, 2, 3 }, { 4, 5, 6, 52, 4, 5, 6 } }, r:totable())
    assert.are.same({ { true, false } }, T.cat({ T({ { true } }), T({ { false } }) }, 2):totable())
    assert.are.same({ 3, 3 }, a:cat(b, 1).shape)
    assert.are.same({ 2, 3 }, T.cat({ T.zeros(0, 3), a }).shape)
    assert.error_matches(function() T.cat({ a, T.zeros(2, 2) }, 1) end,
      "cat: tensor 2 has shape (2,2), tensor 1 (2,3) (axis 2 differs)", 1, true)
    assert.error_matches(function() T.cat({ a, a }, 3) end, "cat: axis 3 is out of range for 2 dimensions", 1, true)
  end)

  it("stacks along a new axis", function()
    local a, b = T({ 1, 2 }), T({ 3, 4 })
    assert.are.same({ { 1, 2 }, { 3, 4 } }, T.stack({ a, b }):totable())
    assert.are.same({ { 1, 3 }, { 2, 4 } }, T.stack({ a, b }, -1):totable())
    assert.are.same({ 2 }, T.stack({ T(1), T(2) }).shape)
    assert.error_matches(function() T.stack({ a, T({ 1 }) }) end, "stack: tensor 2 has shape (1), tensor 1 (2)", 1, true)
  end)

  it("tiles like torch.tile and repeat", function()
    local a = T({ { 1, 2 } })
    assert.are.same({ { 1, 2, 1, 2 }, { 1, 2, 1, 2 } }, a:tile(2, 2):totable())
    assert.are.same({ { 1, 2, 1, 2 } }, a:tile(2):totable())
    assert.are.same({ 3, 1, 2 }, a:tile({ 3, 1, 1 }).shape)
    assert.are.same({ { 1, 2 }, { 1, 2 } }, a["repeat"](a, 2, 1):totable())
  end)

  it("splits and chunks into views", function()
    local a = T.arange(7)
    local p = a:split(3)
    assert.are.equal(3, #p)
    assert.are.same({ { 0, 1, 2 }, { 3, 4, 5 }, { 6 } }, { p[1]:totable(), p[2]:totable(), p[3]:totable() })
    local q = a:split({ 2, 5 })
    assert.are.same({ 2, 3, 4, 5, 6 }, q[2]:totable())
    local c = T(grid(2, 5)):chunk(2, 2)
    assert.are.same({ { 4, 5 }, { 9, 10 } }, c[2]:totable())
    assert.are.equal(3, #T.arange(6):chunk(4)) -- chunks of 2: three of them, as torch
    assert.error_matches(function() a:split({ 2, 2 }) end, "split: sizes {2,2} add up to 4, but axis 1 has size 7", 1, true)
  end)
end)

describe("indexing", function()
  local a = T(grid(3, 4))

  it("selects rows, ranges and positions, 1-based and from the end", function()
    assert.are.same({ 5, 6, 7, 8 }, a[2]:totable())
    assert.are.same({ 9, 10, 11, 12 }, a[-1]:totable())
    assert.are.same({ 2, 6, 10 }, a[{ {}, 2 }]:totable())
    assert.are.same({ { 2, 3 }, { 6, 7 } }, a[{ { 1, 2 }, { 2, 3 } }]:totable())
    assert.are.same({ { 5, 6, 7, 8 } }, a[{ { 2 } }]:totable())
    assert.are.same({ 10, 11 }, a[{ 3, { 2, -2 } }]:totable())
    assert.are.equal(7, a[{ 2, 3 }]:item())
    assert.are.same({ { 1, 3 }, { 9, 11 } }, a[{ { 1, 3, 2 }, { 1, 4, 2 } }]:totable())
    assert.are.same({ 0, 4 }, a[{ { 2, 1 } }].shape)
    assert.error_matches(function() local _ = a[4] end, "index: 4 is out of range for axis 1 of size 3 (3,4)", 1, true)
    assert.error_matches(function() local _ = a[{ 1, 2, 3 }] end, "index: 3 keys for a tensor of 2 dimensions", 1, true)
    assert.error_matches(function() local _ = a[{ {}, { 2, 5 } }] end, "index: axis 2: range {2, 5} is outside 1..4", 1, true)
    assert.error_matches(function() local _ = T(1)[1] end, "index: a 0-d tensor has no axis to index", 1, true)
  end)

  it("assigns into an index lazily; values computed before keep the old value", function()
    local t = T(grid(3, 4))
    local before = t[1] + 0
    t[{ 1, { 2, 3 } }] = 0
    t[{ {}, 4 }] = T({ -1, -2, -3 })
    t[3] = T({ 7 }) -- broadcast
    t[{ { 2 }, { 1, 3, 2 } }] = 9.7 -- cast to int32 (truncation)
    assert.are.same({ { 1, 0, 0, -1 }, { 9, 6, 9, -2 }, { 7, 7, 7, 7 } }, t:totable())
    assert.are.same({ 1, 2, 3, 4 }, before:totable())
    assert.are.equal(lg.int32, t.dtype)
    assert.error_matches(function() t[{ 1 }] = T({ 1, 2 }) end,
      "setitem: a value of shape (2) does not broadcast to the indexed shape (4)", 1, true)
  end)

  it("aliases views as PyTorch does: writes go through to the base and its other views", function()
    -- expected values: the same statements in PyTorch 1.13 (0-based there)
    local a = T.zeros(3, 4)
    local row, cols = a[2], a:permute(2, 1)
    row[3] = 5                       -- a[1][2] = 5
    a[1][2] = 7                      -- a[0][1] = 7: a[1] is a view
    local strided = a[{ {}, { 1, 4, 2 } }]
    strided[{ 1, 2 }] = 9            -- a[:, 0:4:2][0, 1] = 9
    a[{ 3, {} }] = 1
    assert.are.same({ { 0, 7, 9, 0 }, { 0, 0, 5, 0 }, { 1, 1, 1, 1 } }, a:totable())
    assert.are.same({ 0, 0, 5, 0 }, row:totable())
    assert.are.same({ { 0, 0, 1 }, { 7, 0, 1 }, { 9, 5, 1 }, { 0, 0, 1 } }, cols:totable())
    assert.are.same({ { 0, 9 }, { 0, 5 }, { 1, 1 } }, strided:totable())
    cols:assign(2)                   -- a.t().fill_(2)... written through the permute
    assert.are.same({ 2, 2, 2, 2 }, a[1]:totable())
    local flat = a:reshape(12)
    a:realize()                      -- views read the realized buffer, not the old graph
    assert.are.equal("BUFFER", require("luagrad.schedule").base(flat.uop).op)
    assert.error_matches(function()
      local e = T.zeros(1, 3):expand(2, 3)
      e[1] = 4
    end, "cannot write into an expanded view (2,3) of (1,3)", 1, true)
  end)

  it("gathers with 1-based index values along any axis", function()
    local rng = H.lcg(5)
    local x = T(grid(3, 4)):float()
    local idx = H.ints(rng, 6, 1, 4)
    local g = x:gather(2, T(idx):reshape(3, 2))
    local want = {}
    for i = 1, 3 do
      for j = 1, 2 do want[#want + 1] = (i - 1) * 4 + idx[(i - 1) * 2 + j] + 0.0 end
    end
    H.close(want, H.flat(g:totable()), 0)
    assert.are.same({ { 9, 2, 7 } }, T(grid(3, 4)):gather(1, T({ { 3, 1, 2 } })):totable())
    assert.are.same({ { true, false } }, T({ { false, true } }):gather(-1, T({ { 2, 1 } })):totable())
    assert.error_matches(function() x:gather(2, T({ 1.0 })) end, "gather: index has dtype float32", 1, true)
    assert.error_matches(function() x:gather(2, T({ 1 })) end, "gather: index (1) and tensor (3,4) need the same number", 1, true)
  end)
end)
