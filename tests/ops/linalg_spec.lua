-- matmul, dot, softmax and log_softmax against plain Lua references over seeded random inputs.
local lg = require "luagrad"
local H = require "ops.helpers"
local T = lg.Tensor

local function got(t) return H.flat(t:totable()) end

describe("matmul and softmax", function()
  local rng = H.lcg(7)

  local function ref_mm(a, sa, b, sb) -- 2-D (n,k) @ (k,m)
    local n, k, m = sa[1], sa[2], sb[2]
    local out = {}
    for i = 1, n do
      for j = 1, m do
        local s = 0
        for l = 1, k do s = s + a[(i - 1) * k + l] * b[(l - 1) * m + j] end
        out[(i - 1) * m + j] = s
      end
    end
    return out
  end

  it("multiplies 2-D, batched with broadcasting, and 1-D operands", function()
    local a, b = H.floats(rng, 12, -2, 2), H.floats(rng, 20, -2, 2)
    local ta, tb = T(a):reshape(3, 4), T(b):reshape(4, 5)
    H.close(ref_mm(a, { 3, 4 }, b, { 4, 5 }), got(ta:matmul(tb)), 1e-6)
    -- batched: (2,1,3,4) @ (2,4,5) -> (2,2,3,5)
    local a2, b2 = H.floats(rng, 24, -2, 2), H.floats(rng, 40, -2, 2)
    local r = T(a2):reshape(2, 1, 3, 4):matmul(T(b2):reshape(2, 4, 5))
    assert.are.same({ 2, 2, 3, 5 }, r.shape)
    local want = {}
    for i = 1, 2 do
      for j = 1, 2 do
        local sa = { table.unpack(a2, (i - 1) * 12 + 1, i * 12) }
        local sb = { table.unpack(b2, (j - 1) * 20 + 1, j * 20) }
        for _, q in ipairs(ref_mm(sa, { 3, 4 }, sb, { 4, 5 })) do want[#want + 1] = q end
      end
    end
    H.close(want, got(r), 1e-6)
    -- 1-D cases
    local v = T({ 1, 2, 3, 4 })
    assert.are.same({}, v:matmul(v).shape)
    assert.are.equal(30, v:dot(v):item())
    local iv = T({ { 1, 2 }, { 3, 4 } })
    assert.are.same({ 5, 11 }, iv:matmul(T({ 1, 2 })):totable())
    assert.are.same({ 7, 10 }, T({ 1, 2 }):matmul(iv):totable())
    assert.are.same({ { 5, 11 }, { 11, 25 } }, iv:matmul(iv:transpose(1, 2)):totable())
    assert.are.equal(lg.int32, iv:matmul(iv).dtype)
    assert.are.equal(lg.float32, iv:matmul(iv:float()).dtype)
    assert.are.same({ 0, 0 }, T.zeros(0, 0):matmul(T.zeros(0, 0)).shape)
    assert.are.same({ { 0, 0 }, { 0, 0 } }, T.zeros(2, 0):matmul(T.zeros(0, 2)):totable())
  end)

  it("rejects mismatched matmul shapes with both shapes", function()
    assert.error_matches(function() T.zeros(2, 3):matmul(T.zeros(4, 2)) end, "matmul: shapes (2,3) and (4,2) do not match (3 vs 4)", 1, true)
    assert.error_matches(function() T.zeros(2, 2, 3):matmul(T.zeros(3, 3, 2)) end, "matmul: shapes (2) and (3) do not broadcast", 1, true)
    assert.error_matches(function() T(1):matmul(T.zeros(2)) end, "matmul: both operands need at least 1 dimension", 1, true)
    assert.error_matches(function() T.zeros(3):dot(T.zeros(4)) end, "dot: shapes (3) and (4) do not match", 1, true)
  end)

  it("computes softmax and log_softmax stably on any axis", function()
    local v = H.floats(rng, 12, -3, 3)
    v[1] = 1000 -- stability
    local x = T(v):reshape(3, 4)
    local sm, lsm = got(x:softmax()), got(x:log_softmax(-1))
    local sm1 = got(x:softmax(1))
    for i = 1, 3 do
      local mx = -math.huge
      for j = 1, 4 do mx = math.max(mx, v[(i - 1) * 4 + j]) end
      local s = 0
      for j = 1, 4 do s = s + math.exp(v[(i - 1) * 4 + j] - mx) end
      for j = 1, 4 do
        local q = (i - 1) * 4 + j
        H.close(math.exp(v[q] - mx) / s, sm[q], 1e-6, "softmax")
        H.close(v[q] - mx - math.log(s), lsm[q], 1e-5, "log_softmax")
      end
    end
    for j = 1, 4 do
      local mx = -math.huge
      for i = 1, 3 do mx = math.max(mx, v[(i - 1) * 4 + j]) end
      local s = 0
      for i = 1, 3 do s = s + math.exp(v[(i - 1) * 4 + j] - mx) end
      for i = 1, 3 do H.close(math.exp(v[(i - 1) * 4 + j] - mx) / s, sm1[(i - 1) * 4 + j], 1e-6, "softmax(1)") end
    end
    H.close({ 0.5, 0.5 }, T({ 1, 1 }):softmax():totable()) -- ints give float32
    assert.are.same({ 2, 0 }, T.zeros(2, 0):softmax().shape)
  end)
end)
