-- Host memory of the CPU and LLVM devices (devices/cpu/hostmem.c): a freed large buffer is kept
-- and handed out again for the same size, so that touching it again faults no pages in.
local lg = require "luagrad"
local core = lg.core

-- minor page faults of this process so far (field 10 of /proc/self/stat)
local function minor_faults()
  local f = assert(io.open("/proc/self/stat"))
  local stat = f:read("a")
  f:close()
  local fields = {}
  for w in stat:match("%) (.*)"):gmatch("%S+") do fields[#fields + 1] = w end
  return tonumber(fields[8]) -- fields[1] is field 3 (state)
end

describe("host memory", function()
  for _, dev in ipairs({ "CPU", "LLVM" }) do
    it("reuses a freed buffer of the same size on " .. dev, function()
      local nbytes = 4 << 20 -- above glibc's mmap threshold: a fresh buffer would be fresh zero pages
      local bytes = string.rep("luagrad!", nbytes // 8)
      local b = core.buffer(dev, lg.uint8, nbytes)
      b:write_bytes(bytes)
      b:release()
      local again = core.buffer(dev, lg.uint8, nbytes)
      assert.is_true(again:read_bytes() == bytes, "the buffer handed out again holds what was written")
      local before = minor_faults()
      again:write_bytes(bytes)
      local faults = minor_faults() - before
      assert.is_true(faults < nbytes // 4096 // 4, ("%d page faults writing %d bytes"):format(faults, nbytes))
    end)
  end
end)
