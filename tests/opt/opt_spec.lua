-- The kernel optimizer (luagrad.opt): each transformation on its own, its errors, the heuristic,
-- and a fuzzer: random small kernels under random sequences of transformations give the
-- results of the kernel as scheduled (exact for integers and elementwise math, within a
-- tolerance for float reductions, whose order of additions changes).
local lg = require "luagrad"
local opt = require "luagrad.opt"
local schedule = require "luagrad.schedule"
local C = require "opt.conv"
local I = require "opt.inputs"
local core = lg.core
local T = lg.Tensor

local lcg, mat = I.lcg, I.mat

-- the one kernel that computes t (its inputs realized)
local function kernel_of(t)
  local ks = schedule.schedule({ t.uop })
  assert.are.equal(1, #ks, "expected one kernel")
  return ks[1]
end

local function numel(shape)
  local n = 1
  for _, d in ipairs(shape or {}) do n = n * d end
  return n
end

local function base_buffer(u)
  while u.op ~= "BUFFER" do u = u.src[1] end
  return u
end

local count = 0
-- compile and run kernel k with `sink` in place of its own; the output's values
local function run(k, sink)
  count = count + 1
  local name = "opt_test" .. count
  local prog = core.program("CPU", core.render_c(sink, name), name)
  local out = core.buffer("CPU", k.output.dtype, math.max(1, numel(k.output.shape)))
  local args = { out }
  for i, inp in ipairs(k.inputs) do args[i + 1] = core.node_buffer(base_buffer(inp)) end
  prog:launch(args)
  return out:read()
end

local function count_op(sink, op)
  local n = 0
  for _, u in ipairs(sink:toposort()) do
    if u.op == op then n = n + 1 end
  end
  return n
end

local same = require("ops.helpers").same

describe("opt transformations", function()
  local rng = lcg(7)
  local a, b = mat(rng, { 6, 5 }, lg.float32), mat(rng, { 5, 12 }, lg.float32)
  local k = kernel_of(a:matmul(b)) -- ranges: 0 (6), 1 (12) output; 2 (5) reduce
  local want = run(k, k.sink)

  it("upcast splits an output range into an outer range and copies of the body", function()
    local s = opt.apply(k.sink, { { "upcast", 1, 4 } })
    assert.are.equal(3, opt.ranges(s)[1].size)
    assert.are.equal(4, count_op(s, "STORE"))
    assert.are.equal(4, count_op(s, "REDUCE"))
    same(want, run(k, s), 1e-6, "upcast 1 by 4")
  end)

  it("upcast by the whole size removes the range", function()
    local s = opt.apply(k.sink, { { "upcast", 0, 6 } })
    assert.is_nil(opt.ranges(s)[0])
    assert.are.equal(6, count_op(s, "STORE"))
    same(want, run(k, s), 1e-6, "upcast 0 by 6")
  end)

  it("merge joins two reduce ranges walked as one; the heuristic merges them first", function()
    local x = T.rand(3, 4, 5, 6):realize()
    local m = kernel_of(x:sum({ 3, 4 }))
    local rs, axes = opt.ranges(m.sink), {}
    for a, r in pairs(rs) do
      if r.kind == 1 then axes[#axes + 1] = a end
    end
    table.sort(axes)
    assert.are.equal(2, #axes)
    local s = opt.apply(m.sink, { { "merge", axes[1], axes[2] } })
    assert.are.equal(30, opt.ranges(s)[axes[1]].size)
    assert.is_nil(opt.ranges(s)[axes[2]])
    same(run(m, m.sink), run(m, s), 1e-5, "merge")
    assert.are.same({ "merge", axes[1], axes[2] }, opt.heuristic(m.sink)[1])
    assert.has_error(function() opt.merge(m.sink, 0, axes[1]) end,
      ("opt: merge: axes 0 and %d are ranges of different kinds"):format(axes[1]))
  end)

  it("accumulate gives each copy a REDUCE of its own, combined after the loop", function()
    local s = opt.apply(k.sink, { { "accumulate", 2, 2 } }) -- 5 -> 6: 2 accumulators of 3 steps
    assert.are.equal(3, opt.ranges(s)[2].size)
    assert.are.equal(2, count_op(s, "REDUCE"))
    same(want, run(k, s), 1e-6, "accumulate 2 by 2")
  end)

  it("upcast by an amount that does not divide the size pads with gated stores", function()
    local s = opt.apply(k.sink, { { "upcast", 1, 5 } }) -- 12 -> 15
    assert.are.equal(3, opt.ranges(s)[1].size)
    same(want, run(k, s), 1e-6, "upcast 1 by 5")
  end)

  it("unroll puts the copies into one REDUCE, and removes it when whole", function()
    local s = opt.apply(k.sink, { { "unroll", 2, 5 } })
    assert.is_nil(opt.ranges(s)[2])
    assert.are.equal(0, count_op(s, "REDUCE"))
    same(want, run(k, s), 1e-6, "unroll 2 by 5")
    s = opt.apply(k.sink, { { "unroll", 2, 2 } }) -- 5 -> 6, the extra iteration adds 0
    assert.are.equal(3, opt.ranges(s)[2].size)
    assert.are.equal(1, count_op(s, "REDUCE"))
    same(want, run(k, s), 1e-6, "unroll 2 by 2")
  end)

  it("pad gates the extra iterations of output and reduce ranges", function()
    local s = opt.apply(k.sink, { { "pad", 0, 4 }, { "pad", 2, 8 } })
    assert.are.equal(8, opt.ranges(s)[0].size)
    assert.are.equal(8, opt.ranges(s)[2].size)
    same(want, run(k, s), 1e-6, "pad")
  end)

  it("swap trades the loops of two output ranges", function()
    local s = opt.apply(k.sink, { { "swap", 0, 1 } })
    assert.are.equal(12, opt.ranges(s)[0].size)
    assert.are.equal(6, opt.ranges(s)[1].size)
    same(want, run(k, s), 0, "swap")
  end)

  it("max and product reductions combine their copies with their own op", function()
    local x = mat(rng, { 4, 6 }, lg.int32)
    for _, t in ipairs({ x:max(2), x:min(2), (x % 3 + 1):prod(2) }) do
      local kk = kernel_of(t)
      same(run(kk, kk.sink), run(kk, opt.apply(kk.sink, { { "unroll", 1, 4 }, { "upcast", 0, 3 } })), nil, "max/prod")
    end
  end)

  it("vectorize makes vector lanes: whole-vector, masked and gathered accesses in the C", function()
    local s = opt.apply(k.sink, { { "vectorize", 1, 4 } }) -- the 12 columns: 3 x 4 lanes
    local r = opt.ranges(s)
    assert.are.equal(3, r[1].size)
    assert.are.equal(opt.LANES, r[3].kind)
    assert.are.equal(4, r[3].size)
    local c = core.render_c(s, "lanes_test")
    assert.matches("typedef float f32x4 __attribute__%(%(vector_size%(16%)%)%)", c)
    assert.matches("*(const f32x4_u *)(data2 + ", c, 1, true) -- b's rows are contiguous
    same(want, run(k, s), 1e-6, "vectorize 1 by 4")
    s = opt.apply(k.sink, { { "vectorize", 0, 8 } }) -- 6 rows padded to 8: a's column gathered
    c = core.render_c(s, "lanes_test2")
    assert.matches("gather_f32x8(data1, ", c, 1, true)
    same(want, run(k, s), 1e-6, "vectorize 0 by 8")
    local x = mat(rng, { 4, 14 }, lg.float32)
    local kp = kernel_of(x:pad({ { 0, 0 }, { 1, 1 } }) * 2) -- the pad's gate is per lane
    s = opt.apply(kp.sink, { { "vectorize", 1, 16 } })
    assert.matches("load_f32x16(data1 + ", core.render_c(s, "lanes_test3"), 1, true)
    same(run(kp, kp.sink), run(kp, s), nil, "padded")
    local kq = kernel_of(x:reshape(1, 1, 4, 14):max_pool2d({ 1, 2 })) -- every other element: load2
    s = opt.apply(kq.sink, { { "vectorize", 1, 8 } }) -- the 7 outputs of a row
    assert.matches("load2_f32x8(data1 + ", core.render_c(s, "lanes_test5"), 1, true)
    same(run(kq, kq.sink), run(kq, s), nil, "pool")
    local up = mat(rng, { 4, 8 }, lg.float32) -- each element twice: loadh
    local ku = kernel_of(up:reshape(4, 8, 1):expand(4, 8, 2):reshape(4, 16) * 3)
    for _, w in ipairs({ 8, 16 }) do
      s = opt.apply(ku.sink, { { "vectorize", 1, w } })
      assert.matches(("loadh_f32x%d(data1 + "):format(w), core.render_c(s, "lanes_test6_" .. w), 1, true)
      same(run(ku, ku.sink), run(ku, s), nil, "upsample")
    end
    local kr = kernel_of(x:max(2)) -- a reduce over the lanes: a vector accumulator, summed after
    s = opt.apply(kr.sink, { { "vectorize", 1, 8 } })
    assert.matches("float red1 = max_lanes_f32x8(acc0);", core.render_c(s, "lanes_test4"), 1, true)
    same(run(kr, kr.sink), run(kr, s), nil, "row max")
  end)

  it("names the problem in its errors", function()
    assert.has_error(function() opt.upcast(k.sink, 7, 2) end, "opt: upcast: the kernel has no range of axis 7")
    assert.has_error(function() opt.upcast(k.sink, 2, 2) end, "opt: upcast: axis 2 is a reduce range")
    assert.has_error(function() opt.unroll(k.sink, 0, 2) end, "opt: unroll: axis 0 is an output range")
    assert.has_error(function() opt.upcast(k.sink, 0, 0) end, "opt: upcast: the amount must be an integer >= 1, got 0")
    assert.has_error(function() opt.pad(k.sink, 0, 1.5) end, "opt: pad: the multiple must be an integer >= 1, got 1.5")
    assert.has_error(function() opt.swap(k.sink, 0, 2) end, "opt: swap: axes 0 and 2 are ranges of different kinds")
    assert.has_error(function() opt.apply(k.sink, { { "tile", 0, 2 } }) end,
      "opt: apply: step 1 is tile; expected upcast, unroll, accumulate, merge, pad, swap or vectorize")
    assert.has_error(function() opt.vectorize(k.sink, 1, 3) end,
      "opt: vectorize: the width must be a power of 2 from 2 to 16, got 3")
    local kh = kernel_of(mat(rng, { 4, 8 }, lg.float16) * 2)
    local ok, err = pcall(core.render_c, opt.apply(kh.sink, { { "vectorize", 1, 8 } }), "half_lanes")
    assert.is_false(ok)
    assert.matches("vector lanes of float16 and bfloat16 are not supported", err, 1, true)
    local v = opt.vectorize(k.sink, 1, 4)
    assert.has_error(function() opt.vectorize(v, 0, 2) end, "opt: vectorize: the kernel has vector lanes already (axis 3)")
    assert.has_error(function() opt.upcast(v, 3, 2) end, "opt: upcast: axis 3 is a vector lanes range")
    local empty = kernel_of(T.ones(3, 0):sum(2))
    assert.has_error(function() opt.unroll(empty.sink, 1, 2) end, "opt: unroll: axis 1 has size 0")
  end)
end)

describe("opt simplification", function()
  it("takes multiples of d out of a division or remainder by d", function()
    local i32 = lg.int32
    local r1 = core.uop("RANGE", i32, { core.const(i32, 3) }, { 0, 0 })
    local r2 = core.uop("RANGE", i32, { core.const(i32, 14) }, { 1, 0 })
    local n = r1 * 17 + r2
    assert.are.equal(tostring(r1 + r2), tostring(opt.simplify(n % 16))) -- r1 + r2 < 16
    assert.are.equal(tostring(r1), tostring(opt.simplify(n // 16)))
  end)
end)

describe("opt heuristic", function()
  it("blocks a matmul in registers: the contiguous axis by 2 vectors of 16, the other by 8", function()
    local rng = lcg(3)
    local k = kernel_of(mat(rng, { 64, 16 }, lg.float32):matmul(mat(rng, { 16, 64 }, lg.float32)))
    assert.are.same({ { "vectorize", 1, 16 }, { "upcast", 1, 2 }, { "upcast", 0, 8 } }, opt.heuristic(k.sink))
    same(run(k, k.sink), run(k, opt.optimize(k.sink)), 1e-5, "matmul")
  end)

  it("gives elementwise kernels and row reductions vector lanes, and leaves small kernels alone", function()
    local rng = lcg(4)
    local x = mat(rng, { 64, 64 }, lg.float32)
    local k = kernel_of(x + 1) -- the two ranges merge into one of 4096
    assert.are.same({ { "merge", 0, 1 }, { "vectorize", 0, 16 } }, opt.heuristic(k.sink))
    local row = mat(rng, { 1, 64 }, lg.float64) -- broadcast along axis 1: no merge
    assert.are.same({ { "vectorize", 1, 8 } }, opt.heuristic(kernel_of(x:double() * row).sink))
    assert.are.same({ { "merge", 0, 1 } }, opt.heuristic(kernel_of(x:half() * 2).sink)) -- no float16 lanes
    k = kernel_of(x:max(2))
    assert.are.same({ { "vectorize", 1, 16 } }, opt.heuristic(k.sink))
    same(run(k, k.sink), run(k, opt.optimize(k.sink)), nil, "row max")
    k = kernel_of(mat(rng, { 8, 8 }, lg.float32):matmul(mat(rng, { 8, 8 }, lg.float32)))
    assert.are.same({}, opt.heuristic(k.sink))
  end)

  it("keeps a convolution's results", function()
    local rng = lcg(5)
    local x, w = mat(rng, { 2, 3, 6, 6 }, lg.float32), mat(rng, { 4, 3, 3, 3 }, lg.float32)
    local g = mat(rng, { 2, 4, 6, 6 }, lg.float32)
    for _, t in ipairs({ C.conv2d(x, w, 1), C.conv2d_dw(x, g, 3, 1), C.conv2d_dx(g, w, 1) }) do
      local k = kernel_of(t)
      same(run(k, k.sink), run(k, opt.optimize(k.sink)), 1e-5, "conv")
    end
  end)
end)

-- ---- the fuzzer --------------------------------------------------------------------------------

local DTYPES = { lg.float32, lg.int32, lg.float16, lg.int8, lg.uint8, lg.float64 }

-- a random small computation of one kernel; inputs are realized
local function random_case(rng)
  local dt = DTYPES[rng(#DTYPES)]
  local m, n, p = rng(6) + 1, rng(7) + 1, rng(5) + 1
  local kind = rng(8)
  if kind == 1 then -- elementwise with broadcasting
    return mat(rng, { m, n }, dt) * mat(rng, { 1, n }, dt) + mat(rng, { m, 1 }, dt), "elementwise " .. tostring(dt)
  elseif kind == 2 then -- a reduction over one or two axes
    local x = mat(rng, { m, n, p }, dt)
    local axes = ({ { 1 }, { 2 }, { 3 }, { 1, 3 }, { 2, 3 } })[rng(5)]
    local how = ({ "sum", "max", "min" })[rng(3)]
    return x[how](x, #axes == 1 and axes[1] or axes), how .. " " .. tostring(dt)
  elseif kind == 3 then -- matmul
    if dt == lg.uint8 or dt == lg.int8 then dt = lg.int32 end
    return mat(rng, { m, p }, dt):matmul(mat(rng, { p, n }, dt)), "matmul " .. tostring(dt)
  elseif kind == 4 then -- views: padded, flipped, permuted, shrunk
    local x = mat(rng, { m, n }, dt)
    local v = x:pad({ { rng(3) - 1, rng(2) - 1 }, { 0, rng(3) - 1 } }):flip(1):permute(2, 1)
    local s = v.shape
    v = v:shrink({ { 1, s[1] }, { 1, s[2] - (s[2] > 1 and 1 or 0) } })
    local y = mat(rng, v.shape, dt)
    if rng(2) == 1 then return (v + y):sum(2), "view sum " .. tostring(dt) end
    return v * y, "view " .. tostring(dt)
  elseif kind == 5 then -- a reduction broadcast against another input
    local x, y = mat(rng, { m, 1, p }, dt), mat(rng, { 1, n, p }, dt)
    return (x * y):max(3), "broadcast max " .. tostring(dt)
  elseif kind == 6 then -- comparisons, bool logic, where, casts, division
    local x, y = mat(rng, { m, n }, dt), mat(rng, { m, n }, dt)
    local c = x:lt(y):logical_and(y:ne(0)):logical_or(x:eq(y * 2)):logical_xor(x:gt(1))
    local q = dt.kind == "float" and x / (y * y + 1) or x:idiv(y:abs() + 1) + x:mod(3)
    return c:where(q, y:maximum(x)):cast(lg.int32):cast(lg.float32) + c:float() + x:cast(lg.float64):float(),
      "logic " .. tostring(dt)
  end
  if kind == 7 then -- pooling (loads of every other element) and its upsampling (each element twice)
    local x = mat(rng, { 2, m, 2 * n + rng(2) - 1 }, dt == lg.float16 and lg.float32 or dt)
    if rng(2) == 1 then
      return x:reshape(2, m, x.shape[3], 1):expand(2, m, x.shape[3], 2):reshape(2, m, 2 * x.shape[3]) + 1,
        "upsample " .. tostring(x.dtype)
    end
    return x:reshape(1, 2, m, x.shape[3]):max_pool2d({ 1, 2 }), "pool " .. tostring(x.dtype)
  end
  local x, w = mat(rng, { 1, 2, m + 2, n + 2 }, lg.float32), mat(rng, { 2, 2, 3, 3 }, lg.float32)
  return C.conv2d(x, w, rng(2) - 1), "conv"
end

-- a random transformation of a kernel that keeps the number of copies of its body small
-- (vector lanes on one range, when `lanes`)
local function random_opts(rng, sink, lanes)
  local opts, copies = {}, 1
  for _ = 1, rng(3) do
    local rs, list = opt.ranges(sink), {}
    for _, r in pairs(rs) do
      if r.kind == opt.LANES then lanes = false else list[#list + 1] = r end
    end
    table.sort(list, function(x, y) return x.axis < y.axis end)
    if #list == 0 then break end
    local r = list[rng(#list)]
    local what = rng(5)
    local o
    if what == 5 then
      if lanes then o = { "vectorize", r.axis, 1 << rng(3) } end
    elseif what <= 2 then
      local amount = rng(math.min(r.size + 1, 8) - 1) + 1 -- 2..8, at most one more than the size
      if copies * amount <= 64 then
        o = { r.kind == 0 and "upcast" or (rng(2) == 1 and "unroll" or "accumulate"), r.axis, amount }
        copies = copies * amount
      end
    elseif what == 3 then
      o = { "pad", r.axis, rng(4) + 1 }
    else
      local other = list[rng(#list)]
      if other.kind == r.kind and other ~= r then o = { "swap", r.axis, other.axis } end
    end
    if o then
      opts[#opts + 1] = o
      sink = opt.apply(sink, { o })
    end
  end
  return opts, sink
end

describe("opt fuzzer", function()
  it("keeps the results of random kernels under random transformations", function()
    local rng = lcg(12345)
    for case = 1, 60 do
      local t, what = random_case(rng)
      local k = kernel_of(t)
      local want = run(k, k.sink)
      local opts, sink = random_opts(rng, k.sink, not what:find("float16"))
      local desc = {}
      for i, o in ipairs(opts) do desc[i] = table.concat(o, " ") end
      local label = ("case %d (%s; %s)"):format(case, what, table.concat(desc, ", "))
      local reduces = count_op(k.sink, "REDUCE") > 0
      local tol = k.output.dtype.kind == "float" and reduces and (k.output.dtype == lg.float16 and 1e-2 or 1e-5) or nil
      same(want, run(k, sink), tol, label)
    end
  end)

  it("keeps the results of random kernels with vector lanes on a random range", function()
    local rng = lcg(777)
    for case = 1, 40 do
      local t, what = random_case(rng)
      if not what:find("float16") then
        local k = kernel_of(t)
        local list = {}
        for _, r in pairs(opt.ranges(k.sink)) do list[#list + 1] = r end
        table.sort(list, function(x, y) return x.axis < y.axis end)
        local o = { "vectorize", list[rng(#list)].axis, 1 << rng(4) }
        local opts, sink = random_opts(rng, opt.apply(k.sink, { o }), false)
        table.insert(opts, 1, o)
        local desc = {}
        for i, x in ipairs(opts) do desc[i] = table.concat(x, " ") end
        local label = ("case %d (%s; %s)"):format(case, what, table.concat(desc, ", "))
        local tol = k.output.dtype.kind == "float" and count_op(k.sink, "REDUCE") > 0 and 1e-5 or nil
        same(run(k, k.sink), run(k, sink), tol, label)
      end
    end
  end)
end)
