-- The kernel optimizer's benchmark (not a spec): GFLOP/s of matmul, a convolution built as
-- tinygrad builds it (pad, _pool's repeat/shrink/reshape, expand, permute, sum) and its two
-- backward-style reductions, and an elementwise kernel, one thread, best of several runs.
-- NOOPT=1 gives the unoptimized numbers.
--   LUA_PATH="build/share/lua/5.4/?.lua;tests/?.lua;;" LUA_CPATH="build/lib/lua/5.4/?.so;;" \
--     lua5.4 tests/opt/bench.lua [name filter]
local lg = require "luagrad"
local T = lg.Tensor
local clock = lg.core.clock

local C = require "opt.conv"

local function best(n, f)
  local b = math.huge
  for _ = 1, n do
    local t = clock()
    f()
    b = math.min(b, clock() - t)
  end
  return b
end

local filter = arg and arg[1]
local function bench(name, flops, make, runs)
  if filter and not name:find(filter, 1, true) then return end
  make():realize() -- compile
  local t = best(runs or 5, function() make():realize() end)
  print(("%-36s %8.2f ms %8.1f GFLOP/s"):format(name, t * 1e3, flops / t / 1e9))
end

lg.manual_seed(1)
for _, n in ipairs({ 512, 1024 }) do
  local a, b = T.rand(n, n):realize(), T.rand(n, n):realize()
  bench(("matmul %d^3"):format(n), 2 * n ^ 3, function() return a:matmul(b) end, n > 512 and 3 or 5)
end
local bs, cin, cout, hw, k = 64, 16, 32, 14, 3
local x, w = T.rand(bs, cin, hw, hw):realize(), T.rand(cout, cin, k, k):realize()
local g = T.rand(bs, cout, hw, hw):realize()
local cflops = 2 * bs * cout * hw * hw * cin * k * k
bench("conv2d 64x16->32 14x14 3x3 pad 1", cflops, function() return C.conv2d(x, w, 1) end)
bench("conv2d weight gradient", cflops, function() return C.conv2d_dw(x, g, k, 1) end)
bench("conv2d input gradient", cflops, function() return C.conv2d_dx(g, w, 1) end)
local e1, e2 = T.rand(4096, 4096):realize(), T.rand(4096, 4096):realize()
bench("elementwise a*b+a 4096^2", 2 * 4096 * 4096, function() return e1 * e2 + e1 end)
local s = T.rand(4096, 1024):realize()
bench("sum over the last axis 4096x1024", 4096 * 1024, function() return s:sum(2) end)
bench("sum over the first axis 4096x1024", 4096 * 1024, function() return s:sum(1) end)
