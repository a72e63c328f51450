-- Elementwise ops against plain Lua references over seeded random inputs, several dtypes and
-- broadcasting shapes (see tests/ops/helpers.lua).
local lg = require "luagrad"
local H = require "ops.helpers"
local T = lg.Tensor

local SA, SB = { 2, 1, 3 }, { 4, 1 } -- broadcast to (2, 4, 3)

local function tensor(vals, shape, dtype) return T(vals, { dtype = dtype }):reshape(shape) end
local function got(t) return H.flat(t:totable()) end

-- Lua references of integer ops with floor semantics (Lua's // and % floor, as PyTorch)
local function idiv(a, b) return b == 0 and 0 or a // b end
local function imod(a, b) return b == 0 and 0 or a % b end

describe("elementwise", function()
  local rng = H.lcg(1234)

  it("adds, subtracts, multiplies ints with broadcasting and wrapping", function()
    for _, c in ipairs({ { lg.int32, 32, true, -1000, 1000 }, { lg.int8, 8, true, -100, 100 },
                         { lg.uint8, 8, false, 0, 255 }, { lg.int64, 64, true, -99999, 99999 } }) do
      local d, bits, signed, lo, hi = table.unpack(c)
      local a, b = H.ints(rng, 6, lo, hi), H.ints(rng, 4, lo, hi)
      local ta, tb = tensor(a, SA, d), tensor(b, SB, d)
      local r = T.stack({ ta + tb, ta - tb, ta * tb }, 1)
      assert.are.equal(d, r.dtype)
      local want = {}
      for _, f in ipairs({ function(x, y) return x + y end, function(x, y) return x - y end,
                           function(x, y) return x * y end }) do
        local v = H.bmap(function(x, y) return H.wrap(f(x, y), bits, signed) end, a, SA, b, SB)
        for _, x in ipairs(v) do want[#want + 1] = x end
      end
      H.close(want, got(r), 0, tostring(d))
    end
  end)

  it("computes float arithmetic in float32, float16 and float64", function()
    for _, d in ipairs({ lg.float32, lg.float16, lg.float64 }) do
      local a, b = H.floats(rng, 6, -4, 4), H.floats(rng, 4, 0.5, 4)
      local ta, tb = tensor(a, SA, d), tensor(b, SB, d)
      local r = T.stack({ ta + tb, ta - tb, ta * tb, ta / tb, ta:maximum(tb), ta:minimum(tb) }, 1)
      local want = {}
      for _, f in ipairs({ function(x, y) return x + y end, function(x, y) return x - y end,
                           function(x, y) return x * y end, function(x, y) return x / y end, math.max, math.min }) do
        for _, x in ipairs((H.bmap(f, a, SA, b, SB))) do want[#want + 1] = x end
      end
      H.close(want, got(r), d == lg.float16 and 1e-3 or 1e-6, tostring(d))
    end
  end)

  it("floor-divides and takes remainders with the divisor's sign", function()
    for _, d in ipairs({ lg.int32, lg.int8, lg.int64 }) do
      local a, b = H.ints(rng, 6, -50, 50), H.ints(rng, 4, -7, 7)
      b[1] = 0 -- x // 0 and x % 0 are 0
      local ta, tb = tensor(a, SA, d), tensor(b, SB, d)
      local r = T.stack({ ta // tb, ta % tb, ta:idiv(tb), ta:mod(tb) }, 1)
      local q, m = H.bmap(idiv, a, SA, b, SB), H.bmap(imod, a, SA, b, SB)
      local want = {}
      for _, v in ipairs({ q, m, q, m }) do
        for _, x in ipairs(v) do want[#want + 1] = x end
      end
      H.close(want, got(r), 0, tostring(d))
    end
    -- floats: floor(a / b) and a - b * floor(a / b), as Lua's // and %
    local a, b = H.floats(rng, 6, -8, 8), H.floats(rng, 4, 0.5, 3)
    b[2] = -b[2]
    local ta, tb = tensor(a, SA, lg.float32), tensor(b, SB, lg.float32)
    local r = T.stack({ ta // tb, ta % tb }, 1)
    local want = H.bmap(function(x, y) return x // y end, a, SA, b, SB)
    for _, x in ipairs((H.bmap(function(x, y) return x % y end, a, SA, b, SB))) do want[#want + 1] = x end
    H.close(want, got(r), 1e-6, "float")
    -- unsigned: plain division
    local u = T({ 7, 200, 9 }, { dtype = lg.uint8 })
    assert.are.same({ 3, 100, 4, 1, 0, 1 }, T.cat({ u // 2, u % 2 }):totable())
  end)

  it("takes numbers on either side of every operator", function()
    local a = T({ 1, 2, -3, 4 })
    local r = T.stack({ 2 - a, 10 // a, 10 % a, a ^ 2, 2 ^ a:abs(), -a, a * 3 + 1 }, 1)
    assert.are.equal(lg.int32, r.dtype)
    assert.are.same({ { 1, 0, 5, -2 }, { 10, 5, -4, 2 }, { 0, 0, -2, 2 }, { 1, 4, 9, 16 }, { 2, 4, 8, 16 },
      { -1, -2, 3, -4 }, { 4, 7, -8, 13 } }, r:totable())
    H.close({ 1.0, 0.5, -1 / 3, 0.25 }, (1 / a):totable(), 1e-6)
    H.close({ 0.5, 1.0, -1.5, 2.0 }, (a * 0.5):totable())
    assert.are.equal(lg.float32, (a * 0.5).dtype)
    assert.are.equal(lg.float32, (1 / a).dtype)
    local h = T({ 1.5, 2 }, { dtype = lg.float16 })
    assert.are.equal(lg.float16, (h * 2.5).dtype) -- weak scalars keep the tensor's dtype
    assert.are.equal(lg.int8, (T({ 1 }, { dtype = lg.int8 }) + 1000 // 10).dtype)
  end)

  it("raises to powers: floats, integers, negative exponents", function()
    local a, b = H.floats(rng, 6, 0.5, 3), H.floats(rng, 4, -2, 2)
    local r = tensor(a, SA, lg.float32) ^ tensor(b, SB, lg.float32)
    H.close(H.bmap(function(x, y) return x ^ y end, a, SA, b, SB), got(r), 1e-6)
    local ib, ie = T({ 2, -3, 5, 1, -1, 0 }), T({ 10, 3, 0, -2, -3, 0 })
    assert.are.same({ 1024, -27, 1, 1, -1, 1 }, (ib ^ ie):totable())
    assert.are.equal(lg.int32, (ib ^ ie).dtype)
    H.close({ 2.0, 0.0 / 0.0 }, (T({ 4.0, -4.0 }) ^ 0.5):totable())
  end)

  it("compares, and combines with logical and bitwise ops", function()
    local a, b = H.ints(rng, 6, -3, 3), H.ints(rng, 4, -3, 3)
    local ta, tb = tensor(a, SA, lg.int32), tensor(b, SB, lg.int32)
    local r = T.stack({ ta:lt(tb), ta:le(tb), ta:gt(tb), ta:ge(tb), ta:eq(tb), ta:ne(tb),
                        ta:logical_and(tb), ta:logical_or(tb), ta:lt(tb):logical_not() }, 1)
    assert.are.equal(lg.bool, r.dtype)
    local want = {}
    for _, f in ipairs({ function(x, y) return x < y end, function(x, y) return x <= y end,
                         function(x, y) return x > y end, function(x, y) return x >= y end,
                         function(x, y) return x == y end, function(x, y) return x ~= y end,
                         function(x, y) return x ~= 0 and y ~= 0 end, function(x, y) return x ~= 0 or y ~= 0 end,
                         function(x, y) return not (x < y) end }) do
      for _, x in ipairs((H.bmap(f, a, SA, b, SB))) do want[#want + 1] = x end
    end
    H.close(want, got(r), 0)
    -- bitwise on ints and bools, with the Lua operators too
    local x, y = H.ints(rng, 6, -200, 200), H.ints(rng, 4, 0, 255)
    local tx, ty = tensor(x, SA, lg.int32), tensor(y, SB, lg.int32)
    local full = { 2, 4, 3 }
    local rb = T.stack({ tx:bitwise_and(ty), tx | ty, tx ~ ty, (~tx):expand(full), (tx << 2):expand(full), (tx >> 1):expand(full) }, 1)
    local wb = {}
    for _, f in ipairs({ function(p, q) return p & q end, function(p, q) return p | q end,
                         function(p, q) return p ~ q end, function(p) return H.wrap(~p, 32, true) end,
                         function(p) return H.wrap(p << 2, 32, true) end, function(p) return p >> 1 | (p < 0 and ~(-1 >> 1) or 0) end }) do
      for _, v in ipairs((H.bmap(f, x, SA, y, SB))) do wb[#wb + 1] = v end
    end
    H.close(wb, got(rb), 0)
    local p, q = T({ true, true, false, false }), T({ true, false, true, false })
    assert.are.same({ true, false, false, false, true, true, true, false, false, true, true, false },
      T.cat({ p:bitwise_and(q), p:bitwise_or(q), p:bitwise_xor(q) }):totable())
    assert.are.same({ 6, 255 }, T.cat({ T({ 7 }, { dtype = lg.uint8 }) & 14, ~T({ 0 }, { dtype = lg.uint8 }) }):totable())
  end)

  it("selects with where, broadcasting all three operands", function()
    local c = T({ { true }, { false } })
    assert.are.same({ { 1, 2, 3 }, { 9, 9, 9 } }, c:where(T({ 1, 2, 3 }), 9):totable())
    assert.are.same({ { 1.5, 1.5 }, { 2, 2 } }, T({ { 1 }, { 0 } }):where(1.5, T({ 2, 2 })):totable())
    assert.are.equal(lg.float32, c:where(1.5, 2).dtype)
  end)

  it("computes unary float math against math.*", function()
    local xs = H.floats(rng, 24, -6, 6)
    xs[1], xs[2], xs[3], xs[4] = 0.5, -2.5, 1.5, -0.5 -- halves round to even
    local pos = {}
    for i, v in ipairs(xs) do pos[i] = math.abs(v) + 0.125 end
    local x, p = T(xs), T(pos)
    local sig = function(v) return 1 / (1 + math.exp(-v)) end
    local cases = {
      { x:exp(), math.exp, 1e-5 }, { p:log(), math.log, 1e-6 }, { x:exp2(), function(v) return 2 ^ v end, 1e-6 },
      { p:log2(), function(v) return math.log(v, 2) end, 1e-6 }, { p:sqrt(), math.sqrt, 1e-6 },
      { p:rsqrt(), function(v) return 1 / math.sqrt(v) end, 1e-6 }, { x:sin(), math.sin, 1e-6 },
      { x:cos(), math.cos, 1e-6 }, { (x * 0.2):tan(), function(v) return math.tan(H.f32(v * 0.2)) end, 1e-5 },
      { x:abs(), math.abs, 0 }, { x:neg(), function(v) return -v end, 0 },
      { x:sign(), function(v) return v > 0 and 1.0 or v < 0 and -1.0 or 0.0 end, 0 },
      { x:floor(), math.floor, 0 }, { x:ceil(), math.ceil, 0 }, { x:round(), H.round_even, 0 },
      { x:trunc(), function(v) return v >= 0 and math.floor(v) or math.ceil(v) end, 0 },
      { x:relu(), function(v) return math.max(v, 0) end, 0 }, { x:sigmoid(), sig, 1e-6 },
      { x:tanh(), function(v) return (math.exp(v) - math.exp(-v)) / (math.exp(v) + math.exp(-v)) end, 2e-6 },
      { x:silu(), function(v) return v * sig(v) end, 1e-6 },
      { x:gelu(), function(v) return 0.5 * v * (1 + H.erf(v / math.sqrt(2))) end, 1e-6 },
      { x:gelu("tanh"), nil, nil }, -- checked below
      { p:reciprocal(), function(v) return 1 / v end, 1e-6 }, { x:erf(), H.erf, 5e-7 },
      { x:clip(-1, 2.5), function(v) return math.min(math.max(v, -1), 2.5) end, 0 },
    }
    local ts = {}
    for i, c in ipairs(cases) do ts[i] = c[1] end
    local r = got(T.stack(ts, 1))
    for i, c in ipairs(cases) do
      if c[3] then
        local src = (i == 2 or i == 4 or i == 5 or i == 6 or i == 23) and pos or xs -- the cases on p
        local w, g = {}, {}
        for j, v in ipairs(src) do
          w[j] = c[2](v) + 0.0
          g[j] = r[(i - 1) * #xs + j]
        end
        H.close(w, g, c[3] == 0 and 1e-12 or c[3], "case " .. i)
      end
    end
    -- gelu tanh approximation: within 1e-3 of the exact form
    for j, v in ipairs(xs) do
      local exact = 0.5 * v * (1 + H.erf(v / math.sqrt(2)))
      assert(math.abs(r[21 * #xs + j] - exact) < 1e-3, "gelu tanh at " .. v)
    end
  end)

  it("handles NaN and infinities in rounding, sign and min/max", function()
    local nan, inf = 0 / 0, math.huge
    local x = T({ nan, inf, -inf, 2.5 })
    local r = got(T.stack({ x:floor(), x:round(), x:sign(), x:maximum(0), x:minimum(0), x:abs() }, 1))
    H.close({ nan, inf, -inf, 2.0, nan, inf, -inf, 2.0, nan, 1.0, -1.0, 1.0, nan, inf, 0.0, 2.5,
      nan, 0.0, -inf, 0.0, nan, inf, inf, 2.5 }, r)
  end)

  it("treats ints and bools in float math as float32, and keeps them whole in rounding", function()
    local i = T({ -2, 0, 3 })
    assert.are.equal(lg.float32, i:exp().dtype)
    assert.are.equal(lg.float32, i:sigmoid().dtype)
    assert.are.equal(i, i:floor())
    assert.are.same({ -1, 0, 1 }, i:sign():totable())
    assert.are.same({ 2, 0, 3 }, i:abs():totable())
    assert.are.same({ 3, 0, 200 }, T({ 3, 0, 200 }, { dtype = lg.uint8 }):abs():totable())
    assert.are.same({ 0, 0, 3 }, i:relu():totable())
    assert.are.same({ -1, 0, 2 }, i:clip(-1, 2):totable())
    assert.are.same({ 3, 0, 2 }, T({ 3, 0, 200 }, { dtype = lg.uint8 }):minimum(T({ 5, 1, 2 }, { dtype = lg.uint8 })):totable())
    assert.are.same({ true, true }, T({ true, false }):maximum(T({ false, true })):totable())
    assert.are.same({ false, false }, T({ true, false }):minimum(T({ false, true })):totable())
    assert.are.same({ true, true }, (T({ true, false }) + T({ false, true })):totable())
  end)

  it("casts between dtypes with truncation and saturation", function()
    local f = T({ -2.7, -0.5, 0.0, 1.9, 300.0 })
    assert.are.same({ -2, 0, 0, 1, 300 }, f:int():totable())
    assert.are.same({ -2, 0, 0, 1, 127 }, f:cast(lg.int8):totable())
    assert.are.same({ true, true, false, true, true }, f:bool():totable())
    assert.are.same({ 1.0, 0.0 }, T({ true, false }):float():totable())
    H.close({ -2.69921875, 1.900390625 }, T({ -2.7, 1.9 }):half():float():totable(), 0)
    assert.are.equal(lg.float16, f:half().dtype)
    assert.are.equal(lg.float64, f:cast("float64").dtype)
  end)

  it("works on 0-d and zero-size tensors", function()
    assert.are.equal(7, (T(3) + T(4)):item())
    assert.are.same({}, (T(3) + T(4)).shape)
    assert.are.same({ 2, 0, 3 }, (T.zeros(2, 0, 3) * T.ones(3)).shape)
    assert.are.same({ { {} }, { {} } }, (T.zeros(2, 1, 0) + 1):totable())
    assert.are.same({ 0 }, T.zeros(0):exp().shape)
  end)

  it("names the op, the shapes and the caller's line in errors", function()
    local a, b = T.zeros(2, 3), T.zeros(4)
    local ok, err = pcall(function() local _ = a + b end) -- luassert strips the position: check it here
    assert.is_false(ok)
    assert.matches("elementwise_spec.lua:%d+: add: shapes %(2,3%) and %(4%) do not broadcast", err)
    assert.error_matches(function() local _ = a:maximum(b) end, "maximum: shapes (2,3) and (4)", 1, true)
    assert.error_matches(function() local _ = a // b end, "idiv: shapes (2,3) and (4)", 1, true)
    assert.error_matches(function() local _ = a:bitwise_and(a) end, "bitwise_and: not defined for float32", 1, true)
    assert.error_matches(function() local _ = -T({ true }) end, "neg: not defined for bool", 1, true)
    assert.error_matches(function() local _ = a + "x" end, "add: expected a Tensor, a number or a boolean, got a string", 1, true)
    assert.error_matches(function() local _ = a:cast("nope") end, "cast: 'nope' is not a dtype", 1, true)
  end)
end)
