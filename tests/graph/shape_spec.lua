-- Shapes of tensor-level UOps from Lua: u.shape, u.ndim, and the core's errors through uop.new.
local lg = require "luagrad"
local U = lg.uop


local function tensor(shape, id)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  return U.new("RESHAPE", lg.float32, { U.new("BUFFER", lg.float32, {}, { n, id or 0 }) }, shape)
end

describe("shape", function()
  it("is a table of sizes on tensor-level nodes, nil elsewhere", function()
    local b = U.new("BUFFER", lg.float32, {}, { 12, 0 })
    assert.are.same({ 12 }, b.shape)
    assert.are.equal(1, b.ndim)
    local x = tensor { 3, 4 }
    assert.are.same({ 3, 4 }, x.shape)
    assert.are.equal(2, x.ndim)
    assert.are.same({ 4, 3 }, U.new("PERMUTE", lg.float32, { x }, { 1, 0 }).shape)
    local c = U.const(lg.float32, 2)
    assert.is_nil(c.shape)
    assert.is_nil(c.ndim)
    assert.is_nil(U.var("i", 0, 9).shape)
    local s = U.new("RESHAPE", lg.float32, { c }, {})
    assert.are.same({}, s.shape)
    assert.are.equal(0, s.ndim)
    assert.are.same({ 3, 4 }, (x + c).shape) -- a shapeless CONST is a scalar among shaped sources
    assert.are.same({ 3, 4 }, (x * 2).shape)
    assert.are.same({ 3, 4 }, x:lt(1).shape)
    assert.are.same({ 3, 1 }, U.new("REDUCE_AXIS", lg.float32, { x }, { "ADD", 1 }).shape)
  end)

  it("is derived, not part of a node's identity", function()
    assert.are.equal(tensor { 2, 6 }, tensor { 2, 6 })
    assert.are_not.equal(tensor({ 2, 6 }, 0), tensor({ 2, 6 }, 1))
  end)

  it("shows in the printed graph", function()
    assert.are.equal("%0 = BUFFER float32 (12) (12, 0)\n" ..
      "%1 = RESHAPE float32 (3,4) %0 (3, 4)\n" ..
      "%2 = CONST float32 1\n" ..
      "%3 = ADD float32 (3,4) %1 %2", tostring(tensor { 3, 4 } + 1))
  end)

  it("is checked when a node is built", function()
    local x, y = tensor { 3, 4 }, tensor({ 3, 5 }, 1)
    assert.error_matches(function() return x + y end, "ADD: shapes (3,4) and (3,5) differ", 1, true)
    assert.error_matches(function() U.new("RESHAPE", lg.float32, { tensor { 2, 3 } }, { 4, 2 }) end,
      "RESHAPE: (2,3) has 6 elements, (4,2) has 8", 1, true)
    assert.error_matches(function() U.new("PERMUTE", lg.float32, { tensor { 2, 3, 4 } }, { 1, 0, 0 }) end,
      "PERMUTE: (1,0,0) is not a permutation of 3 axes", 1, true)
    assert.error_matches(function() U.new("EXPAND", lg.float32, { x }, { 3, 8 }) end,
      "EXPAND: cannot expand (3,4) to (3,8): axis 1 has size 4, not 1", 1, true)
    assert.error_matches(function() U.new("SHRINK", lg.float32, { x }, { 0, 3, 2, 5 }) end,
      "SHRINK: axis 1 of (3,4): (2,5) is not a range within 0..4", 1, true)
    assert.error_matches(function() U.new("REDUCE_AXIS", lg.float32, { x }, { "ADD", 2 }) end,
      "REDUCE_AXIS: axis 2 is out of range for (3,4)", 1, true)
    assert.error_matches(function() return x + U.var("i", 0, 9):cast(lg.float32) end,
      "ADD: source 1 (CAST) has no shape, source 0 has (3,4)", 1, true)
    assert.error_matches(function() U.new("PAD", lg.float32, { U.const(lg.float32, 1) }, {}) end,
      "PAD: the source (CONST) has no shape", 1, true)
  end)
end)
