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
lg.help = require("luagrad.help").help -- help(x): a line of documentation (luagrad/help.lua)

-- tensors: lg.Tensor(data [, opts]), lg.Tensor.zeros(2, 3), ...
local Tensor = require "luagrad.tensor"
require "luagrad.tensor_ops"
require "luagrad.tensor_movement"
for _, m in ipairs({ "tensor_reduce", "tensor_create", "tensor_index", "tensor_conv", "tensor_nn" }) do require("luagrad." .. m) end
lg.manual_seed = Tensor.manual_seed
-- autograd: t:backward(), lg.grad, lg.no_grad, t.requires_grad, t.grad (luagrad/autograd.lua)
lg.autograd = require "luagrad.autograd"
lg.grad, lg.no_grad = lg.autograd.grad, lg.autograd.no_grad
setmetatable(Tensor, { __call = function(_, data, opts) return Tensor.new(data, opts) end })
lg.Tensor = Tensor
lg.state = require "luagrad.state" -- safetensors files and state dicts
lg.data = require "luagrad.data"   -- datasets: IDX files, Fashion-MNIST, batches
lg.nn, lg.optim = require "luagrad.nn", require "luagrad.optim" -- layers; SGD, Adam, AdamW
lg.jit = require("luagrad.jit").jit -- lg.jit(fn): replays fn's kernels (a training step) without running fn

-- u:simplify(): the symbolic pass to a fixed point
function core.UOp.simplify(u) return lg.graph_rewrite(u, "symbolic") end

return lg
