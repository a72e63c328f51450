-- Kernels split over cores (devices/cpu/render_c.c, devices/cpu/pool.c): every output element is
-- computed by one core, so results are bitwise the same however a kernel is split.
local lg = require "luagrad"
local core, T = lg.core, lg.Tensor
local schedule = require "luagrad.schedule"

-- the bytes of a realized tensor
local function bytes(t)
  local u = t:realize().uop
  return core.node_buffer(u.op == "BUFFER" and u or u.src[1]):read_bytes()
end

-- The one kernel of t's graph, compiled for the CPU, with its buffers in slot order (inputs
-- realized first, on $DEVICE, then copied to the CPU).
local function one_kernel(t, name)
  local ks = schedule.schedule({ t.uop })
  assert(#ks == 1, "expected one kernel")
  local k = ks[1]
  local out = core.buffer("CPU", k.output.dtype, T.shape_numel(k.output.shape))
  local bufs = { out }
  for i, inp in ipairs(k.inputs) do
    local b = core.node_buffer(schedule.base(inp))
    bufs[i + 1] = core.buffer("CPU", b.dtype, #b)
    bufs[i + 1]:write_bytes(b:read_bytes())
  end
  local src = core.render_c(k.sink, name)
  return core.program("CPU", src, name), bufs, src
end

-- float32 sums as the kernel does them: in order, rounded after each addition
local function f32(x) return (string.unpack("<f", string.pack("<f", x))) end

describe("kernels split over cores", function()
  T.manual_seed(7)
  local x = T.rand(5, 37):realize()
  local y = T.rand(37, 3):realize()
  local ints = T.randint(-1000, 1000, { 5, 37 }):realize()
  local cases = {
    { "elementwise float", x * x + 1 },
    { "elementwise int", ints * 7 % 13 - ints },
    { "row sum", x:sum(2) },
    { "row max", ints:max(2) },
    { "matmul", x:matmul(y) },
  }

  it("gives the same bytes for any number of chunks, more than the rows too", function()
    for _, c in ipairs(cases) do
      local prog, bufs, src = one_kernel(c[2], "k")
      assert.matches("is split over the cores", src, 1, true)
      prog:launch(bufs, nil, 1)
      local want = bufs[1]:read_bytes()
      for _, n in ipairs({ 2, 3, 4, 5, 7, 64 }) do
        bufs[1]:write_bytes(string.rep("\255", #want))
        prog:launch(bufs, nil, n)
        assert.are.equal(want, bufs[1]:read_bytes(), ("%s on %d cores"):format(c[1], n))
      end
    end
  end)

  it("matches a plain-Lua matmul when split (to float32 rounding: the kernel fuses multiply-adds)", function()
    local prog, bufs = one_kernel(x:matmul(y), "mm")
    prog:launch(bufs, nil, 4)
    local got, xs, ys = bufs[1]:read(), bufs[2]:read(), bufs[3]:read()
    for i = 0, 4 do
      for j = 1, 3 do
        local acc, mag = 0.0, 0.0
        for k = 0, 36 do
          acc, mag = acc + xs[i * 37 + k + 1] * ys[k * 3 + j], mag + math.abs(xs[i * 37 + k + 1] * ys[k * 3 + j])
        end
        assert.is_true(math.abs(acc - got[i * 3 + j]) <= 1e-6 * mag, ("(%d, %d)"):format(i + 1, j))
      end
    end
  end)

  it("runs a full reduction on core 0 only", function()
    local prog, bufs, src = one_kernel(x:sum(), "total")
    assert.matches("const int64_t total_split[2] = {0, 0};", src, 1, true)
    assert.matches("if (core_id != 0) return;", src, 1, true)
    local acc = 0.0
    for _, v in ipairs(bufs[2]:read()) do acc = f32(acc + v) end
    for _, n in ipairs({ 1, 2, 5 }) do
      prog:launch(bufs, nil, n)
      assert.are.same({ acc }, bufs[1]:read())
    end
  end)

  -- hand-built kernels: a reduce loop at the top level before the output loop, a store outside it
  local f32t, i32, void = lg.float32, core.dtypes.int32, core.dtypes.void
  local function U(op, dtype, srcs, arg) return core.uop(op, dtype, srcs or {}, arg) end
  local function buf(slot) return U("DEFINE_GLOBAL", f32t:ptr(), {}, slot) end
  local function at(b, i) return U("INDEX", b.dtype, { b, i }) end
  local function ld(b, i) return U("LOAD", f32t, { at(b, i) }) end
  local function st(b, i, v) return U("STORE", void, { at(b, i), v }) end
  local function range(n, axis, kind) return U("RANGE", i32, { core.const(i32, n) }, { axis, kind }) end
  local function program(sink, name)
    local src = core.render_c(sink, name)
    return core.program("CPU", src, name), src
  end
  local function buffers(...)
    local out = {}
    for i, values in ipairs({ ... }) do
      out[i] = core.buffer("CPU", f32t, #values)
      out[i]:write(values)
    end
    return out
  end

  it("splits the first output loop when a reduce loop at the top level comes before it", function()
    local out, x, y = buf(0), buf(1), buf(2)
    local j = range(4, 1, 1)
    local total = U("REDUCE", f32t, { ld(y, j), j }, "ADD")
    local i = range(10, 0, 0)
    local sink = U("SINK", void, { U("END", void, { st(out, i, ld(x, i) - total), i }) })
    local prog, src = program(sink, "centre")
    assert.matches("const int64_t centre_split[2] = {10, ", src, 1, true)
    assert.is_truthy(src:find("for (int32_t ridx1 = 0; ridx1 < 4; ridx1++)", 1, true) <
      src:find("ridx0 is split over the cores", 1, true))
    local xs, want = {}, {}
    for k = 1, 10 do xs[k], want[k] = k * 3, k * 3 - 10 end
    for _, n in ipairs({ 1, 2, 3, 16 }) do
      local bufs = buffers(xs, xs, { 1, 2, 3, 4 })
      prog:launch(bufs, nil, n)
      assert.are.same(want, bufs[1]:read(), ("%d cores"):format(n))
    end
  end)

  it("runs a kernel that also stores outside its output loop on core 0 only", function()
    local out, flag, x = buf(0), buf(1), buf(2)
    local i = range(6, 0, 0)
    local sink = U("SINK", void, { U("END", void, { st(out, i, ld(x, i) * 2), i }),
      st(flag, core.const(i32, 0), ld(flag, core.const(i32, 0)) + 1) })
    local prog, src = program(sink, "twice_and_count")
    assert.matches("const int64_t twice_and_count_split[2] = {0, 0};", src, 1, true)
    for _, n in ipairs({ 1, 4 }) do
      local bufs = buffers({ 0, 0, 0, 0, 0, 0 }, { 5 }, { 1, 2, 3, 4, 5, 6 })
      prog:launch(bufs, nil, n)
      assert.are.same({ 2, 4, 6, 8, 10, 12 }, bufs[1]:read())
      assert.are.same({ 6 }, bufs[2]:read(), ("the count, %d cores"):format(n)) -- incremented once
    end
  end)

  it("states the work of a kernel for the launcher", function()
    local _, _, src = one_kernel(x * x + 1, "ew")
    -- 5 rows; in each, the row's offset, then 37 times an index, a load, a multiply, an add, a store
    assert.matches("const int64_t ew_split[2] = {5, 186};", src, 1, true)
  end)

  it("gives the same bytes with THREADS=1 and THREADS=2 on kernels big enough to split", function()
    local script = [[
local lg = require "luagrad"
local T = lg.Tensor
local core = lg.core
local function bytes(t)
  local u = t:realize().uop
  return core.node_buffer(u.op == "BUFFER" and u or u.src[1]):read_bytes()
end
T.manual_seed(3)
local a, b, c = T.rand(300007), T.rand(300007), T.rand(300007)
local i = T.randint(-100000, 100000, { 300007 })
local rows = T.rand(7, 100003)
local m1, m2 = T.rand(97, 89), T.rand(89, 101)
local outs = { a * b + c, i * 7 % 1000 - i, rows:sum(2), rows:max(2), m1:matmul(m2), a:sum() }
for _, t in ipairs(outs) do io.write(bytes(t)) end
]]
    local lua, file = os.getenv("LUA") or "lua5.4", os.tmpname()
    local f = assert(io.open(file, "w"))
    f:write(script)
    f:close()
    local function run(threads)
      local p = assert(io.popen(("THREADS=%d %s %s 2>&1"):format(threads, lua, file)))
      local out = p:read("a")
      local ok = p:close()
      assert(ok, out)
      return out
    end
    local one, two = run(1), run(2)
    os.remove(file)
    local size = 4 * (300007 * 2 + 7 * 2 + 97 * 101 + 1)
    assert.are.equal(size, #one)
    assert.is_true(one == two, "THREADS=1 and THREADS=2 differ")
  end)
end)
