-- quickstart.lua: a first look at luagrad: tensors, broadcasting, a reduction, reshapes, and the
-- graph rules underneath. Each line works typed at the build/bin/luagrad prompt as well.
-- Run: build/bin/luagrad examples/quickstart.lua   (or: make demo)
-- With the C kernels it compiles: DEBUG=4 build/bin/luagrad examples/quickstart.lua
local lg = require "luagrad"

-- Tensors are lazy: operations build a graph, and printing one (or t:realize()) schedules it
-- into kernels, compiles them with the C compiler and runs them.
local a = lg.Tensor({ { 1, 2, 3 }, { 4, 5, 6 } }) -- int32, shape (2,3)
local b = lg.Tensor({ 10, 20, 30 })               -- shape (3): broadcast over the rows
print(a)
print(a.dtype, lg.Tensor.shape_str(a.shape), a:numel())
print(a * b + 1)          -- one kernel for both ops
print((a * b):sum(2))     -- the product fuses into the reduction: one kernel
print(a:float():mean(1))  -- axes are 1-based, as in torch7
print(a:reshape(3, 2))    -- a view of the same buffer: no kernel
print(a:permute(2, 1))    -- a transposing copy when printed
print(lg.Tensor.ones(2, 2) / 4)

-- Underneath, everything is a graph of UOps rewritten by pattern rules. The "symbolic" rules
-- simplify the index math of kernels; here they find that (x*4 + 3) // 4 is x.
local x = lg.uop.var("x", 0, 9)
local e = (x * 4 + 3) // 4
print(e:size() .. " nodes before, " .. e:simplify():size() .. " after:")
print(e:simplify())
