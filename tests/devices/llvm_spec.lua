-- The LLVM device from Lua: buffers, programs of LLVM IR, core.render for each device, errors
-- that quote LLVM's diagnostic, and DEVICE=LLVM running tensors (in a child interpreter, as
-- realize reads DEVICE once).
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
