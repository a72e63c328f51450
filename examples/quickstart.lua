-- quickstart.lua: build a UOp graph, simplify it with the symbolic rules, add a rule of your own.
-- Run: build/bin/luagrad examples/quickstart.lua   (or: make demo)
local lg = require "luagrad"
local P = lg.pattern
local U = lg.uop

-- index math as lowering produces it: a flat offset split back into a row and a column
local row, col = U.var("row", 0, 31), U.var("col", 0, 15)
local flat = row * 16 + col
local e = (flat // 16) * 100 + flat % 16
print("before (" .. e:size() .. " nodes):")
print(e)
local s = e:simplify()
print("after (" .. s:size() .. " nodes):")
print(s)

-- bounds: every integer node knows the range of its value
print(("flat is in [%d, %d]"):format(flat.vmin, flat.vmax))

-- a rule of your own: strength-reduce multiplication by 2 into a shift
local x = P.var("x", "int")
local rules = lg.rules.compile({ { x * 2, x << 1, name = "mul2 to shl" } }, "mine")
print(lg.graph_rewrite(row * 2 + col, rules))

-- statistics per rule of the symbolic pass on this graph
local sym = lg.rules.pass("symbolic")
sym:reset_stats()
lg.graph_rewrite(e, sym, { stats = true })
for _, st in ipairs(sym:stats()) do
  if st.rewrites > 0 then print(("%-24s %d rewrites"):format(st.name, st.rewrites)) end
end
