-- dtypes: names, sizes, vector and pointer forms, and promotion against PyTorch's table.
local lg = require "luagrad"

describe("dtypes", function()
  it("has every scalar of the contract with its size", function()
    local sizes = { bool = 1, int8 = 1, int16 = 2, int32 = 4, int64 = 8, uint8 = 1, uint16 = 2, uint32 = 4,
      uint64 = 8, float16 = 2, bfloat16 = 2, float32 = 4, float64 = 8 }
    for name, size in pairs(sizes) do
      assert.are.equal(size, lg[name].itemsize, name)
      assert.are.equal(name, tostring(lg[name]))
      assert.are.equal(lg[name], lg.dtypes[name])
    end
  end)

  it("builds vector and pointer forms that compare by identity", function()
    local v = lg.float32:vec(4)
    assert.are.equal("float32x4", tostring(v))
    assert.are.equal(v, lg.float32:vec(4))
    assert.are.equal(16, v.itemsize)
    assert.are.equal(4, v.lanes)
    assert.are.equal(lg.float32, v.scalar)
    local p = lg.float32:ptr()
    assert.are.equal("float32*", tostring(p))
    assert.is_true(p.is_ptr)
    assert.are.equal("float32 local*", tostring(lg.float32:ptr("local")))
    assert.are.equal(lg.float32, p.base)
  end)

  it("rejects bad dtype requests", function()
    assert.has_error(function() lg.float32:vec(0) end)
    assert.has_error(function() lg.float32:ptr():ptr() end)
    assert.error_matches(function() lg.uop.const("float33", 1) end, "bad argument #1 to 'const' (unknown dtype 'float33')", 1, true)
  end)

  it("promotes like PyTorch", function()
    local n = 0
    for line in io.lines("tests/fixtures/promote_torch.txt") do
      local a, b, want = line:match("^(%w+) (%w+) (%w+)$")
      if a then
        assert.are.equal(lg[want], lg.promote(lg[a], lg[b]), a .. " + " .. b)
        n = n + 1
      end
    end
    assert.are.equal(100, n)
  end)

  it("promotes wide unsigned with signed as numpy does", function()
    assert.are.equal(lg.int32, lg.promote(lg.uint16, lg.int8))
    assert.are.equal(lg.int64, lg.promote(lg.uint32, lg.int32))
    assert.are.equal(lg.float64, lg.promote(lg.uint64, lg.int64))
    assert.are.equal(lg.uint64, lg.promote(lg.uint64, lg.uint8))
  end)
end)
