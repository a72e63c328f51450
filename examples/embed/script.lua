-- script.lua: run by host.c with one argument, the upper bound of x (a string from its command
-- line). Builds (x*4 + 3) // 4 over x in [0, hi], simplifies it with the symbolic pass and
-- returns the text of both graphs, the largest value the result can take, and the sum of the
-- squares of 0..hi computed with tensors (a compiled kernel).
local lg = require "luagrad"
local hi = math.tointeger(tonumber(...)) or error("script.lua: expected an integer upper bound, got " .. tostring(...))
local x = lg.uop.var("x", 0, hi)
local expr = (x * 4 + 3) // 4
local simple = lg.graph_rewrite(expr, "symbolic")
local t = lg.Tensor.arange(hi + 1)
return tostring(expr), tostring(simple), simple.vmax, (t * t):sum():item()
