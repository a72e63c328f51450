-- Reductions, matmul and softmax against plain Lua references over seeded random inputs.
local lg = require "luagrad"
local H = require "ops.helpers"
local T = lg.Tensor

-- reference: reduce flat `vals` of `shape` over the 1-based `axes` with f(acc, v) from init;
-- returns flat values and the keepdim=false shape
local function ref_reduce(vals, shape, axes, init, f)
  local red = {}
  for _, a in ipairs(axes) do red[a < 0 and #shape + a + 1 or a] = true end
  local out_shape, keep_shape = {}, {}
  for i, d in ipairs(shape) do
    keep_shape[i] = red[i] and 1 or d
    if not red[i] then out_shape[#out_shape + 1] = d end
  end
  local out = {}
  for p = 1, H.numel(keep_shape) do out[p] = init end
  local idx = {}
  for p = 1, #vals do
    local rem = p - 1
    for i = #shape, 1, -1 do
      idx[i] = rem % shape[i]
      rem = rem // shape[i]
    end
    local q, stride = 0, 1
    for i = #shape, 1, -1 do
      if not red[i] then q = q + idx[i] * stride end
      stride = stride * keep_shape[i]
    end
    out[q + 1] = f(out[q + 1], vals[p], idx)
  end
  return out, out_shape
end

local function got(t) return H.flat(t:totable()) end

describe("reductions", function()
  local rng = H.lcg(99)
  local S = { 2, 3, 4 }

  it("sums, maxes, mins, prods over axes, tables of axes, everything, with keepdim", function()
    local v = H.ints(rng, 24, -9, 9)
    local x = T(v):reshape(S)
    for _, axes in ipairs({ { 1 }, { -1 }, { 1, 3 }, { 2 }, { 1, 2, 3 } }) do
      local arg = #axes == 1 and axes[1] or axes
      local s, ss = ref_reduce(v, S, axes, 0, function(a, b) return a + b end)
      local m = ref_reduce(v, S, axes, -math.huge, function(a, b) return math.max(a, b) end)
      local n = ref_reduce(v, S, axes, math.huge, function(a, b) return math.min(a, b) end)
      local p = ref_reduce(v, S, axes, 1, function(a, b) return a * b end)
      local r = T.stack({ x:sum(arg), x:max(arg), x:min(arg), x:prod(arg) }, 1)
      local want = {}
      for _, l in ipairs({ s, m, n, p }) do
        for _, q in ipairs(l) do want[#want + 1] = math.tointeger(q) end
      end
      H.close(want, got(r), 0, "axes " .. table.concat(axes, ","))
      assert.are.same(ss, x:sum(arg).shape)
      local kd = x:max(arg, true).shape
      assert.are.equal(3, #kd)
      for _, a in ipairs(axes) do assert.are.equal(1, kd[a < 0 and 3 + a + 1 or a]) end
    end
    local total = 0
    for _, q in ipairs(v) do total = total + q end
    assert.are.equal(total, x:sum():item())
    assert.are.same({ 1, 1, 1 }, x:sum(nil, true).shape)
  end)

  it("gives sums of small ints as int32 and of halves as float16", function()
    assert.are.equal(lg.int32, T({ 100, 100 }, { dtype = lg.int8 }):sum().dtype)
    assert.are.equal(200, T({ 100, 100 }, { dtype = lg.int8 }):sum():item())
    assert.are.equal(510, T({ 255, 255 }, { dtype = lg.uint8 }):sum():item())
    assert.are.equal(2, T({ true, false, true }):sum():item())
    assert.are.equal(lg.int32, T({ true }):sum().dtype)
    local h = T.full({ 4096 }, 1, { dtype = lg.float16 }):sum() -- float32 accumulation: exact
    assert.are.equal(lg.float16, h.dtype)
    assert.are.equal(4096, h:item())
    assert.are.equal(lg.int64, T({ 1 }, { dtype = lg.int64 }):sum().dtype)
    assert.are.same({ 0, 7 }, T.stack({ T({ 3, 0, 7 }, { dtype = lg.uint8 }):min(), T({ 3, 0, 7 }, { dtype = lg.uint8 }):max() }):totable())
    assert.are.same({ -7, 5 }, T.stack({ T({ 3, -7, 5 }, { dtype = lg.int8 }):min(), T({ 3, -7, 5 }, { dtype = lg.int8 }):max() }):totable())
    assert.are.same({ true, false }, T({ { true, false }, { false, false } }):any(1):totable())
    assert.are.same({ false, true }, T({ { true, true }, { false, true } }):all(1):totable())
  end)

  it("computes mean, var and std with corrections", function()
    local v = H.floats(rng, 24, -4, 4)
    local x = T(v):reshape(S)
    for _, c in ipairs({ { 2, 1 }, { -1, 0 }, { { 1, 3 }, 2 } }) do
      local axes, corr = c[1], c[2]
      local list = type(axes) == "table" and axes or { axes }
      local n = 1
      for _, a in ipairs(list) do n = n * S[a < 0 and 3 + a + 1 or a] end
      local sum = ref_reduce(v, S, list, 0, function(a, b) return a + b end)
      local means = {}
      for i, q in ipairs(sum) do means[i] = q / n end
      -- second pass: squared deviations, keyed by output position
      local sq = ref_reduce(v, S, list, 0, function(a) return a end) -- zeros, filled below
      local red = {}
      for _, a in ipairs(list) do red[a < 0 and 3 + a + 1 or a] = true end
      for p = 1, #v do
        local rem, idx = p - 1, {}
        for i = 3, 1, -1 do idx[i] = rem % S[i]; rem = rem // S[i] end
        local q, stride = 0, 1
        for i = 3, 1, -1 do
          if not red[i] then q = q + idx[i] * stride; stride = stride * S[i] end
        end
        sq[q + 1] = sq[q + 1] + (v[p] - means[q + 1]) ^ 2
      end
      local var, std = {}, {}
      for i, q in ipairs(sq) do var[i] = q / (n - corr); std[i] = math.sqrt(var[i]) end
      H.close(means, got(x:mean(axes)), 1e-6, "mean")
      H.close(var, got(x:var(axes, false, corr)), 1e-5, "var")
      H.close(std, got(x:std({ axis = axes, correction = corr })), 1e-5, "std")
    end
    H.close({ 2.5 }, { T({ 1, 2, 3, 4 }):mean():item() }) -- ints give float32
    assert.are.equal(lg.float32, T({ 1, 2 }):mean().dtype)
    H.close({ 1.25 }, { T({ 1, 2, 3, 4 }):var(1, false, 0):item() })
    H.close({ 5 / 3 }, { T({ 1, 2, 3, 4 }):var():item() })
  end)

  it("finds 1-based argmax/argmin, first occurrence", function()
    local v = H.ints(rng, 24, 0, 3) -- many ties
    local x = T(v):reshape(S)
    for _, a in ipairs({ 1, 2, -1 }) do
      local bi = ref_reduce(v, S, { a }, { -1, 0, 1e9, 0 }, function(acc, q, idx)
        local pos = idx[a < 0 and 3 + a + 1 or a] + 1
        local mx, mi, mn, mni = acc[1], acc[2], acc[3], acc[4]
        if q > mx then mx, mi = q, pos end
        if q < mn then mn, mni = q, pos end
        return { mx, mi, mn, mni }
      end)
      local wmax, wmin = {}, {}
      for i, r in ipairs(bi) do wmax[i], wmin[i] = r[2], r[4] end
      H.close(wmax, got(x:argmax(a)), 0, "argmax " .. a)
      H.close(wmin, got(x:argmin(a)), 0, "argmin " .. a)
    end
    assert.are.equal(lg.int32, x:argmax(1).dtype)
    assert.are.equal(3, T({ 1, 5, 7, 7 }):argmax():item())
    assert.are.equal(2, T({ { 1, 0 }, { 3, 0 } }):argmin():item())
    assert.are.equal(2, T({ 1, 0 / 0, 3 }):argmax():item()) -- NaN is the largest
    assert.are.same({ 3 }, T({ 200, 3, 201 }, { dtype = lg.uint8 }):argmax(1, true):totable())
    assert.are.same({ 2 }, T({ 200, 3, 201 }, { dtype = lg.uint8 }):argmin(1, true):totable())
    assert.are.same({ { 2 } }, T({ { 5, 1, 4 } }):argmin(-1, true):totable())
  end)

  it("computes logsumexp stably", function()
    local x = T({ { 1000.0, 1000.0 }, { -1.0, 2.0 }, { -math.huge, -math.huge } })
    H.close({ 1000 + math.log(2), math.log(math.exp(-1) + math.exp(2)), -math.huge }, got(x:logsumexp(2)), 1e-6)
    assert.are.same({ 3, 1 }, x:logsumexp(-1, true).shape)
  end)

  it("handles zero-size and 0-d tensors", function()
    local z = T.zeros(2, 0)
    assert.are.same({ 0, 0 }, z:sum(2):totable())
    assert.are.same({ 1, 1 }, z:prod(2):totable())
    assert.are.same({}, z:sum(1):totable())
    assert.are.equal(0, z:sum():item())
    assert.is_true(z:mean():item() ~= z:mean():item())
    assert.are.equal(false, z:any():item())
    assert.are.equal(true, z:all():item())
    assert.error_matches(function() z:max() end, "max: cannot reduce over axis 2 of size 0 (2,0)", 1, true)
    assert.error_matches(function() z:argmax(2) end, "argmax: cannot reduce over axis 2", 1, true)
    local s = T(5)
    assert.are.equal(5, s:sum():item())
    assert.are.equal(5, s:max(1):item())
    assert.are.equal(1, s:argmax():item())
  end)

  it("names the op and the axis in errors", function()
    local x = T.zeros(2, 3)
    assert.error_matches(function() x:sum(3) end, "sum: axis 3 is out of range for 2 dimensions (2,3)", 1, true)
    assert.error_matches(function() x:max({ 1, -2 }) end, "max: axis 1 appears twice", 1, true)
    assert.error_matches(function() x:mean("a") end, "mean: axis a is out of range", 1, true)
    assert.error_matches(function() x:argmax({ 1 }) end, "argmax: axis is a table", 1, true)
  end)
end)

