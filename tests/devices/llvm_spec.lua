-- The LLVM device from Lua: buffers, programs of LLVM IR, core.render for each device, errors
-- that quote LLVM's diagnostic, kernels split over the cores as on the CPU device, and
-- DEVICE=LLVM running tensors (in a child interpreter, as realize reads DEVICE once).
local lg = require "luagrad"
local core = lg.core
local schedule = require "luagrad.schedule"

local lua = os.getenv("LUA") or "lua5.4"

-- Run a Lua chunk in a child interpreter with the environment `env` ("NAME=value ..."); returns
-- its output (stdout and stderr) and whether it exited with 0.
local function child(env, chunk)
  local p = assert(io.popen(("env %s %s -e %q 2>&1"):format(env, lua, chunk)))
  local out = p:read("a")
  return out, p:close()
end

-- the one kernel of a tensor's graph
local function kernel_of(t)
  local ks = schedule.schedule({ schedule.base(t.uop) })
  assert.are.equal(1, #ks)
  return ks[1]
end

describe("LLVM device", function()
  it("round-trips values of every dtype in its buffers", function()
    for _, c in ipairs({ { lg.bool, { true, false } }, { lg.int8, { -128, 127 } }, { lg.uint64, { -1, 5 } },
      { lg.float16, { 0.5, -2 } }, { lg.bfloat16, { 3, -0.5 } }, { lg.float64, { 0.1, -0.0 } } }) do
      local b = core.buffer("llvm", c[1], #c[2])
      b:write(c[2])
      assert.are.same(c[2], b:read(), tostring(c[1]))
      assert.are.equal("LLVM", b.device)
    end
  end)

  it("renders a kernel for each device and runs the LLVM one, compiled once", function()
    local x = lg.Tensor({ 1.5, -2, 4, 0.25 })
    local k = kernel_of((x * x + 1):sum())
    local ir, c = core.render("LLVM", k.sink, "sumsq"), core.render("cpu", k.sink, "sumsq")
    assert.matches("define void @sumsq(i8** %bufs, i64* %ints, i32 %core_id, i32 %ncores)", ir, 1, true)
    assert.matches("void sumsq(void **bufs, const int64_t *ints, int32_t core_id, int32_t ncores)", c, 1, true)
    assert.are.equal(c, core.render_c(k.sink, "sumsq"))
    assert.error_matches(function() core.render("GPU", k.sink, "k") end, "render: no renderer for device 'GPU'", 1, true)
    local out, inp = core.buffer("LLVM", lg.float32, 1), core.buffer("LLVM", lg.float32, 4)
    inp:write({ 1.5, -2, 4, 0.25 })
    local before = core.device_stats("LLVM")
    local p = core.program("LLVM", ir, "sumsq")
    p:launch({ out, inp })
    assert.are.same({ 1.5 * 1.5 + 1 + 4 + 1 + 16 + 1 + 0.0625 + 1 }, out:read())
    core.program("LLVM", ir, "sumsq")
    local after = core.device_stats("LLVM")
    assert.are.equal(before.compiles + before.disk_hits + 1, after.compiles + after.disk_hits)
    assert.is_true(after.memory_hits > before.memory_hits)
    -- a buffer of the CPU device is not one of LLVM's
    assert.error_matches(function() p:launch({ out, core.buffer("CPU", lg.float32, 4) }) end,
      "buffer 1 is on CPU, the program on LLVM", 1, true)
  end)

  it("reports IR that does not compile with LLVM's diagnostic", function()
    local ok, err = pcall(core.program, "LLVM", "define void @k() {\n  ret i32 0\n}\n", "k")
    assert.is_false(ok)
    assert.matches("LLVM: kernel 'k' does not compile (parse):\nk.ll:2:", err, 1, true)
    assert.matches("ret i32 0", err, 1, true)
    assert.error_matches(function() core.program("LLVM", "define void @other() {\n  ret void\n}\n", "k") end,
      "LLVM: the kernel source defines no function 'k'", 1, true)
  end)

  it("runs tensors when DEVICE=LLVM, every buffer on it, with compile times at DEBUG=2", function()
    local out, ok = child("DEVICE=llvm DEBUG=2", [[
      local lg = require "luagrad"
      local a = lg.Tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, { dtype = lg.float16 })
      local s = (a * 2):sum(2)
      io.write("device ", a.device, " sum ", table.concat(s:totable(), ","), "\n")
      local st = lg.core.device_stats("LLVM")
      io.write("llvm compiles ", st.compiles + st.disk_hits, " cpu buffers ", lg.core.device_stats("CPU").buffers, "\n")]])
    assert.is_true(ok, out)
    assert.matches("device LLVM sum 12.0,30.0\n", out, 1, true)
    assert.matches("llvm compiles 1 cpu buffers 0\n", out, 1, true)
    assert.matches("%*%*%* compile r_2%s+LLVM%s+[%d.]+ ms", out)
    local bad = child("DEVICE=NOPE", [[require "luagrad".Tensor({ 1 })]])
    assert.matches("device 'NOPE': unknown (devices: CPU, LLVM", bad, 1, true)
  end)

  it("splits the same loop as the C renderer and states the same iterations and work", function()
    lg.Tensor.manual_seed(5)
    local x, y = lg.Tensor.rand(6, 40):realize(), lg.Tensor.rand(40, 3):realize()
    for _, t in ipairs({ x * x + 1, x:sum(2), x:max(2), x:matmul(y), x:sum(), (x * 3 - 1):exp() }) do
      local k = kernel_of(t)
      local c, ir = core.render("CPU", k.sink, "k"), core.render("LLVM", k.sink, "k")
      local trips, work = c:match("const int64_t k_split%[2%] = {(%d+), (%d+)};")
      assert.is_truthy(trips, c)
      assert.matches(("@k_split = constant [2 x i64] [i64 %s, i64 %s]"):format(trips, work), ir, 1, true)
    end
  end)

  -- hand-built kernels: out[i] = x[i] * 2 over a split loop, and a count stored outside it
  local f32, i32, void = lg.float32, core.dtypes.int32, core.dtypes.void
  local function U(op, dtype, srcs, arg) return core.uop(op, dtype, srcs or {}, arg) end
  local function at(b, i) return U("INDEX", b.dtype, { b, i }) end
  local function ld(b, i) return U("LOAD", f32, { at(b, i) }) end
  local function st(b, i, v) return U("STORE", void, { at(b, i), v }) end
  local function buffers(...)
    local out = {}
    for i, values in ipairs({ ... }) do
      out[i] = core.buffer("LLVM", f32, #values)
      out[i]:write(values)
    end
    return out
  end

  it("runs each part of a split loop once on any number of cores, and the rest on core 0", function()
    local out, flag, x = U("DEFINE_GLOBAL", f32:ptr(), {}, 0), U("DEFINE_GLOBAL", f32:ptr(), {}, 1), U("DEFINE_GLOBAL", f32:ptr(), {}, 2)
    local i = U("RANGE", i32, { core.const(i32, 6) }, { 0, 0 })
    local twice = U("END", void, { st(out, i, ld(x, i) * 2 + ld(out, i)), i })
    local split = core.program("LLVM", core.render("LLVM", U("SINK", void, { twice }), "twice"), "twice")
    local one = core.const(i32, 0)
    local counted = U("SINK", void, { twice, st(flag, one, ld(flag, one) + 1) })
    local ir = core.render("LLVM", counted, "counted")
    assert.matches("@counted_split = constant [2 x i64] [i64 0, i64 0]", ir, 1, true)
    local whole = core.program("LLVM", ir, "counted")
    for _, n in ipairs({ 1, 2, 4, 5, 6, 16 }) do
      local bufs = buffers({ 0, 0, 0, 0, 0, 0 }, { 5 }, { 1, 2, 3, 4, 5, 6 })
      split:launch(bufs, nil, n) -- out += 2x: a part run twice or not at all shows
      assert.are.same({ 2, 4, 6, 8, 10, 12 }, bufs[1]:read(), ("split, %d cores"):format(n))
      whole:launch(bufs, nil, n)
      assert.are.same({ 4, 8, 12, 16, 20, 24 }, bufs[1]:read(), ("core 0 only, %d cores"):format(n))
      assert.are.same({ 6 }, bufs[2]:read(), ("the count, %d cores"):format(n))
    end
  end)

  it("launches on as many cores as THREADS and the kernel's split allow", function()
    -- out[core_id] = ncores, for a kernel that states 5 iterations of plenty of work
    local chunk = [[
      local core = require "luagrad".core
      local ir = "@k_split = constant [2 x i64] [i64 5, i64 1000000]\n" ..
        "define void @k(i8** %bufs, i64* %ints, i32 %core_id, i32 %ncores) {\n" ..
        "  %p = load i8*, i8** %bufs\n  %f = bitcast i8* %p to i32*\n" ..
        "  %a = getelementptr i32, i32* %f, i32 %core_id\n  store i32 %ncores, i32* %a\n  ret void\n}\n"
      local out = core.buffer("LLVM", core.dtypes.int32, 8)
      out:write({ 0, 0, 0, 0, 0, 0, 0, 0 })
      core.program("LLVM", ir, "k"):launch({ out })
      io.write(table.concat(out:read(), ","), "\n")]]
    local out, ok = child("THREADS=1", chunk)
    assert.is_true(ok, out)
    assert.are.equal("1,0,0,0,0,0,0,0\n", out)
    out, ok = child("THREADS=3", chunk)
    assert.is_true(ok, out)
    assert.are.equal("5,5,5,5,5,0,0,0\n", out)
    out = child("THREADS=zero", [[require "luagrad".core.buffer("LLVM", require "luagrad".float32, 1)]])
    assert.matches("device LLVM: THREADS='zero' is not a number of threads from 1 to 1024", out, 1, true)
  end)

  it("gives the same bytes with THREADS=1 and THREADS=2, and the same as the CPU device", function()
    local chunk = [[
      local lg = require "luagrad"
      local T = lg.Tensor
      local function bytes(t)
        local u = t:realize().uop
        return lg.core.node_buffer(u.op == "BUFFER" and u or u.src[1]):read_bytes()
      end
      T.manual_seed(3)
      local a, b, c = T.rand(300007), T.rand(300007), T.rand(300007)
      local i = T.randint(-100000, 100000, { 300007 })
      local rows, m1, m2 = T.rand(7, 100003), T.rand(97, 89), T.rand(89, 101)
      local outs = { a * b + c, i * 7 % 1000 - i, rows:sum(2), rows:max(2), rows:softmax(2), m1:matmul(m2), a:sum() }
      for _, t in ipairs(outs) do io.write(bytes(t)) end]]
    local one, ok1 = child("DEVICE=LLVM THREADS=1", chunk)
    local two, ok2 = child("DEVICE=LLVM THREADS=2", chunk)
    local cpu, ok3 = child("DEVICE=CPU THREADS=2", chunk)
    assert.is_true(ok1 and ok2 and ok3, one .. two .. cpu)
    assert.are.equal(4 * (300007 * 2 + 7 * 2 + 7 * 100003 + 97 * 101 + 1), #one)
    assert.is_true(one == two, "THREADS=1 and THREADS=2 differ on LLVM")
    assert.is_true(one == cpu, "LLVM and CPU differ")
  end)

  -- ---- vector lanes (opt.vectorize) ----
  local opt = require "luagrad.opt"
  local conv = require "opt.conv"
  local I = require "opt.inputs"
  local T = lg.Tensor
  local lcg, mat = I.lcg, I.mat

  -- kernel k with `sink` in place of its own on a device ("CPU" or "LLVM"): its output's values
  -- and the kernel's source; inputs are copied to the device
  local count = 0
  local function run(device, k, sink)
    count = count + 1
    local name = "lanes" .. count
    local src = core.render(device, sink, name)
    local n = 1
    for _, d in ipairs(k.output.shape or {}) do n = n * d end
    local args = { core.buffer(device, k.output.dtype, math.max(1, n)) }
    for i, inp in ipairs(k.inputs) do
      local u = inp
      while u.op ~= "BUFFER" do u = u.src[1] end
      local b = core.node_buffer(u)
      args[i + 1] = core.buffer(device, b.dtype, #b)
      args[i + 1]:write_bytes(b:read_bytes())
    end
    core.program(device, src, name):launch(args)
    return args[1]:read(), src, args[1]:read_bytes()
  end

  local same = require("ops.helpers").same

  -- the kernels: {tensor, label, float reduction}
  local function lane_kernels()
    local rng, out = lcg(99), {}
    local function add(t, what, red) out[#out + 1] = { t, what, red } end
    for _, dt in ipairs({ lg.float32, lg.int32, lg.int8, lg.float64 }) do
      local x, y = mat(rng, { 5, 24 }, dt), mat(rng, { 5, 24 }, dt)
      local c = x:lt(y):logical_and(y:ne(0)):logical_or(x:eq(y * 2)):logical_xor(x:gt(1))
      local q = dt.kind == "float" and x / (y * y + 1) + (x * x):sqrt() + x:sin() + x:exp() or x:idiv(y) + x:mod(y) + x * y
      add(c:where(q, y:maximum(x)):cast(lg.int32):cast(lg.float32) + c:float() + x:cast(lg.float64):float() + q:float(),
        "elementwise " .. tostring(dt))
    end
    local big = mat(rng, { 5, 24 }, lg.float64) * 1e9 -- float -> int saturates
    add(big:cast(lg.int32) + big:cast(lg.int8):cast(lg.int32) + big:neg():cast(lg.uint8):cast(lg.int32), "saturating casts")
    local b, x = mat(rng, { 6, 20 }, lg.bool), mat(rng, { 6, 20 }, lg.float32)
    add(b:logical_xor(x:gt(0)):logical_or(x:eq(0.5)), "bool in and out")
    local rows = mat(rng, { 7, 40 }, lg.float32)
    add(rows:sum(2), "row sum", true)
    add(rows:max(2), "row max", true)
    add(rows:min(2), "row min", true)
    add((rows / 8 + 1):prod(2), "row prod", true)
    add(mat(rng, { 7, 40 }, lg.int32):max(2), "int row max")
    add(mat(rng, { 7, 40 }, lg.uint8):max(2), "uint8 row max")
    add(mat(rng, { 7, 40 }, lg.int32):prod(2), "int row prod")
    add(b:any(2), "any")
    add(mat(rng, { 16 }, lg.float32):sum(), "sum of 16", true)
    add(mat(rng, { 5, 12 }, lg.float32):matmul(mat(rng, { 12, 9 }, lg.float32)), "matmul", true)
    local v = mat(rng, { 6, 10 }, lg.float32):pad({ { 1, 2 }, { 3, 0 } })
    add(v * mat(rng, v.shape, lg.float32), "padded view")
    add((v:permute(2, 1) + 1):sum(2), "padded, permuted view sum", true)
    local cx, cw = mat(rng, { 1, 2, 7, 9 }, lg.float32), mat(rng, { 3, 2, 3, 3 }, lg.float32)
    add(conv.conv2d(cx, cw, 1), "conv", true)
    for _, dt in ipairs({ lg.float32, lg.float64 }) do -- every other element, each element twice
      local im = mat(rng, { 2, 3, 8, 10 }, dt)
      add(im:max_pool2d(2), "max pool " .. tostring(dt))
      add(im:avg_pool2d(2, { padding = 1 }), "padded avg pool " .. tostring(dt))
      local up = mat(rng, { 2, 3, 4, 1, 5, 1 }, dt):expand(2, 3, 4, 2, 5, 2):reshape(2, 3, 8, 10)
      add(up * im, "upsample " .. tostring(dt))
    end
    return out
  end

  it("keeps a kernel's results with vector lanes on any range, and an upcast or unroll besides", function()
    local cases = 0
    for _, case in ipairs(lane_kernels()) do
      local k = kernel_of(case[1])
      local want = run("CPU", k, k.sink)
      local axes = {}
      for a in pairs(opt.ranges(k.sink)) do axes[#axes + 1] = a end
      table.sort(axes)
      for _, axis in ipairs(axes) do
        for wi, w in ipairs({ 2, 4, 8, 16 }) do
          local opts = { { "vectorize", axis, w } }
          local others = {}
          for _, r in pairs(opt.ranges(opt.apply(k.sink, opts))) do
            if r.kind ~= opt.LANES and (r.size or 0) >= 2 then others[#others + 1] = r end
          end
          table.sort(others, function(p, q) return p.axis < q.axis end)
          local r = others[(wi - 1) % math.max(1, #others) + 1]
          if r then opts[2] = { r.kind == 0 and "upcast" or "unroll", r.axis, 2 } end
          local desc = {}
          for i, o in ipairs(opts) do desc[i] = table.concat(o, " ") end
          local label = ("%s (%s)"):format(case[2], table.concat(desc, ", "))
          local got, ir = run("LLVM", k, opt.apply(k.sink, opts))
          assert.matches("<" .. w .. " x ", ir, 1, true)
          same(want, got, case[3] and 1e-5 or nil, label)
          cases = cases + 1
        end
      end
    end
    assert.is_true(cases >= 100, tostring(cases))
  end)

  it("loads and stores contiguous lanes as single vectors, reduces the lanes after the loop", function()
    local rows = mat(lcg(5), { 8, 64 }, lg.float32)
    local k = kernel_of((rows - rows:max(2, true):realize()):exp():sum(2))
    local sink = opt.apply(k.sink, { { "vectorize", 1, 16 } })
    local got, ir = run("LLVM", k, sink)
    same(run("CPU", k, k.sink), got, 1e-5, "exp sum")
    assert.matches("load <16 x float>, <16 x float>*", ir, 1, true)
    assert.matches("call float @llvm.vector.reduce.fadd.v16f32(float 0x8000000000000000", ir, 1, true)
    assert.is_nil(ir:find("masked.gather", 1, true))
    local e = kernel_of(rows * 2 + 1)
    local eir = select(2, run("LLVM", e, opt.apply(e.sink, { { "vectorize", 1, 8 } })))
    assert.matches("store <8 x float> ", eir, 1, true)
    assert.is_nil(eir:find("masked.scatter", 1, true))
  end)

  it("loads every other element, or each twice, with one masked load and a shuffle (pooling)", function()
    local im = mat(lcg(7), { 2, 3, 8, 12 }, lg.float32)
    local pool, up = kernel_of(im:max_pool2d(2)), kernel_of(im:reshape(2, 3, 8, 1, 12, 1):expand(2, 3, 8, 2, 12, 2)
      :reshape(2, 3, 16, 24) * 2)
    for _, c in ipairs({ { pool, 3, "v32f32" }, { up, 3, "v8f32" } }) do
      local k, axis, ty = c[1], c[2], c[3]
      local got, ir = run("LLVM", k, opt.apply(k.sink, { { "vectorize", axis, 16 } }))
      same(run("CPU", k, k.sink), got, nil, ty)
      assert.matches("@llvm.masked.load." .. ty .. ".p0" .. ty .. "(", ir, 1, true)
      assert.is_nil(ir:find("masked.gather", 1, true))
    end
  end)

  it("loads and stores contiguous lanes with a gate per lane as masked vectors (a padded row)", function()
    local rows = mat(lcg(6), { 8, 14 }, lg.float32)
    local k = kernel_of(rows:pad({ { 0, 0 }, { 1, 0 } }) * 2) -- 15 wide, lanes padded to 16
    local sink = opt.apply(k.sink, { { "pad", 1, 16 }, { "vectorize", 1, 16 } })
    local got, ir = run("LLVM", k, sink)
    same(run("CPU", k, k.sink), got, nil, "padded")
    assert.matches("call <16 x float> @llvm.masked.load.v16f32.p0v16f32(", ir, 1, true)
    assert.matches("call void @llvm.masked.store.v16f32.p0v16f32(", ir, 1, true)
    assert.is_nil(ir:find("masked.gather", 1, true))
    assert.is_nil(ir:find("masked.scatter", 1, true))
  end)

  it("keeps NaN and -0.0 in vector MAX as the scalar MAX does: the same bytes as the CPU device", function()
    local nan, inf = 0 / 0, math.huge
    local vals = { -0.0, 0.0, 0.0, -0.0, -0.0, -0.0, nan, 1, -inf, -inf, -1, -0.0, 2, nan, -0.0, 0.0 }
    local x = T(vals):reshape({ 4, 4 }):realize()
    local y = T(vals):flip(1):reshape({ 4, 4 }):realize()
    for _, t in ipairs({ x:max(2), x:max(1), x:maximum(y), x:max() }) do
      local k = kernel_of(t)
      local want = select(3, run("CPU", k, k.sink))
      for axis in pairs(opt.ranges(k.sink)) do
        assert.are.equal(want, select(3, run("LLVM", k, opt.apply(k.sink, { { "vectorize", axis, 4 } }))))
      end
    end
  end)

  it("rejects vector lanes of float16 and bfloat16", function()
    for _, dt in ipairs({ lg.float16, lg.bfloat16 }) do
      local k = kernel_of(mat(lcg(3), { 4, 8 }, dt) * 3)
      assert.error_matches(function() core.render("LLVM", opt.apply(k.sink, { { "vectorize", 1, 4 } }), "k") end,
        "vector lanes of float16 and bfloat16 are not supported", 1, true)
    end
  end)

  it("is an error to open without libLLVM, and the CPU device still works", function()
    local out, ok = child("-u DEVICE LUAGRAD_LIBLLVM=/nonexistent/libLLVM.so", [[
      local lg = require "luagrad"
      io.write(tostring(pcall(lg.core.buffer, "LLVM", lg.float32, 1)), " ", select(2, pcall(lg.core.buffer, "LLVM", lg.float32, 1)), "\n")
      io.write(table.concat((lg.Tensor({ 1, 2 }) * 3):totable(), ","), "\n")]])
    assert.is_true(ok, out)
    assert.matches("false device LLVM: cannot load libLLVM (LUAGRAD_LIBLLVM): /nonexistent/libLLVM.so: cannot open", out, 1, true)
    assert.matches("\n3,6\n", out, 1, true)
  end)
end)
