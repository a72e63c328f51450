-- luagrad: the user-facing module, assembled over the C core (luagrad.core).
local core = require "luagrad.core"

local lg = {
  core = core,
  dtypes = core.dtypes,
  ops = core.ops,
  promote = core.promote,
  UOp = core.UOp,
  uop = { new = core.uop, const = core.const, var = core.var },
  pattern = require "luagrad.pattern",
  rules = require "luagrad.rules",
}
for name, dt in pairs(core.dtypes) do lg[name] = dt end

lg.graph_rewrite = lg.rules.graph_rewrite

-- u:simplify(): the symbolic pass to a fixed point
function core.UOp.simplify(u) return lg.graph_rewrite(u, "symbolic") end

return lg
