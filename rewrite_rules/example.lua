-- example.lua: the shape of a rule file. Each rule is {pattern, result}; a template result
-- (a pattern or a value) is built in C, a function runs in Lua and may return nil.
local P = require "luagrad.pattern"

local x, c1, c2 = P.var("x"), P.cvar("c1"), P.cvar("c2")

return {
  { x + 0, x },
  { x * 1, x },
  { x * 0, 0 }, -- for floats only where x is finite
  { x // 1, x },
  { (x + c1) + c2, function(m) return m.x + (m.c1.arg + m.c2.arg) end, name = "add chain" },
}
