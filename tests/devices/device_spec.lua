-- Devices from Lua: buffers of every dtype, compiling and launching a program, errors.
local lg = require "luagrad"
local core = lg.core

describe("CPU device from Lua", function()
  it("round-trips values of every dtype, converted as constants are", function()
    local cases = {
      { lg.bool, { true, false, 2 }, { true, false, true } },
      { lg.int8, { 127, 128, -129, 2.9 }, { 127, -128, 127, 2 } },
      { lg.uint8, { 255, 256, -1 }, { 255, 0, 255 } },
      { lg.int16, { -32768, 40000 }, { -32768, -25536 } },
      { lg.uint16, { 65535, 65536 }, { 65535, 0 } },
      { lg.int32, { -2147483648, 2147483648 }, { -2147483648, -2147483648 } },
      { lg.uint32, { 4294967295, -1 }, { 4294967295, 4294967295 } },
      { lg.int64, { math.mininteger, math.maxinteger }, { math.mininteger, math.maxinteger } },
      { lg.uint64, { -1, 5 }, { -1, 5 } }, -- uint64 comes back as its bit pattern
      { lg.float16, { 0.1, 65520, 1e-8 }, { 0.0999755859375, math.huge, 0.0 } },
      { lg.bfloat16, { 0.1, 3 }, { 0.10009765625, 3.0 } },
      { lg.float32, { 0.1, 16777217 }, { 0.10000000149011612, 16777216.0 } },
      { lg.float64, { 0.1, -0.0 }, { 0.1, -0.0 } },
    }
    for _, c in ipairs(cases) do
      local b = core.buffer("CPU", c[1], #c[2])
      b:write(c[2])
      assert.are.same(c[3], b:read(), tostring(c[1]))
      assert.are.equal(#c[2] * c[1].itemsize, b.nbytes)
    end
  end)

  it("writes and reads parts of a buffer and its bytes", function()
    local b = core.buffer("CPU", lg.int32, 5)
    b:write({ 1, 2, 3, 4, 5 })
    b:write({ 9, 9 }, 2)
    assert.are.same({ 9, 9, 4 }, b:read(2, 3))
    assert.are.equal(20, #b:read_bytes())
    b:write_bytes(string.pack("<i4", 7), 16)
    assert.are.same({ 1, 9, 9, 4, 7 }, b:read())
    assert.error_matches(function() b:read(4, 3) end, "buffer: elements 4..6 are outside 1..5", 1, true)
    assert.error_matches(function() b:write({ "x" }) end, "buffer:write: item 1 is a string, not a number", 1, true)
  end)

  it("compiles and launches a program, caching it by its source", function()
    local src = [[
#include <stdint.h>
void twice(void **bufs, const int64_t *ints, int32_t core_id, int32_t ncores) {
  float *out = bufs[0];
  const float *x = bufs[1];
  for (int64_t i = 0; i < ints[0]; i++) out[i] = x[i] * 2.0f;
}]]
    local x, y = core.buffer("CPU", lg.float32, 4), core.buffer("CPU", lg.float32, 4)
    x:write({ 1, 2.5, -3, 0 })
    local p = core.program("CPU", src, "twice")
    p:launch({ y, x }, { 4 })
    assert.are.same({ 2.0, 5.0, -6.0, 0.0 }, y:read())
    local before = core.device_stats("CPU")
    core.program("CPU", src, "twice")
    assert.are.equal(before.compiles, core.device_stats("CPU").compiles)
  end)

  it("sums right where gcc 12.2's loop vectorizer at -O2 did not (the device turns it off)", function()
    -- opt.accumulate's kernel for the rows of a 4x8x6 int32 sum: 3 accumulators over 2 trips
    local src = [[
#include <stdint.h>
void acc3(void **bufs, const int64_t *ints, int32_t core_id, int32_t ncores) {
  int32_t *restrict data0 = (int32_t *)bufs[0];
  const int32_t *restrict data1 = (const int32_t *)bufs[1];
  for (int32_t ridx0 = 0; ridx0 < 4; ridx0++) {
    for (int32_t ridx1 = 0; ridx1 < 8; ridx1++) {
      int32_t alu0 = ridx0 * 48 + ridx1 * 6;
      int32_t acc0 = 0, acc1 = 0, acc2 = 0;
      for (int32_t ridx2 = 0; ridx2 < 2; ridx2++) {
        int32_t alu1 = ridx2 * 3;
        acc0 = (int32_t)((uint32_t)acc0 + (uint32_t)data1[alu0 + alu1]);
        acc1 = (int32_t)((uint32_t)acc1 + (uint32_t)data1[alu1 + alu0 + 1]);
        acc2 = (int32_t)((uint32_t)acc2 + (uint32_t)data1[alu1 + alu0 + 2]);
      }
      data0[ridx0 * 8 + ridx1] = (int32_t)((uint32_t)(int32_t)((uint32_t)acc0 + (uint32_t)acc1) + (uint32_t)acc2);
    }
  }
}]]
    local vals, want = {}, {}
    for i = 1, 192 do vals[i] = (i * 37) % 200 - 100 end
    for r = 1, 32 do
      want[r] = 0
      for j = 1, 6 do want[r] = want[r] + vals[(r - 1) * 6 + j] end
    end
    local x, y = core.buffer("CPU", lg.int32, 192), core.buffer("CPU", lg.int32, 32)
    x:write(vals)
    core.program("CPU", src, "acc3"):launch({ y, x })
    assert.are.same(want, y:read())
  end)

  it("reports compile errors with the offending line, and bad arguments", function()
    local ok, err = pcall(core.program, "CPU", "void broken(void) { return nothing; }", "broken")
    assert.is_false(ok)
    assert.matches("does not compile", err, 1, true)
    assert.matches("return nothing;", err, 1, true)
    assert.has_error(function() core.buffer("NOPE", lg.float32, 1) end)
    assert.error_matches(function() core.buffer("CPU", lg.float32:vec(4), 1) end, "scalar dtype", 1, true)
  end)
end)
