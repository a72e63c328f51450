-- luagrad.optim: SGD, Adam and AdamW, with PyTorch's update rules (torch.optim, 1.13).
--   local opt = lg.optim.Adam(lg.nn.parameters(model), {lr = 1e-3})
--   opt:zero_grad(); loss:backward(); opt:step()
-- step() builds each update as lazy tensor math from p.grad, points every parameter (and state
-- tensor) at its new value with assign (inside lg.no_grad when autograd is loaded), so the same
-- handles hold them from step to step (as lg.jit's replays need), and realizes the parameters,
-- the optimizer's states and the buffers that layers updated lazily (BatchNorm2d's running
-- statistics, lg.nn.take_pending) in ONE Tensor.realize_all: one schedule per step, no loops over
-- elements. Parameters without a .grad are skipped. Values that change from step to step (the
-- learning rate, Adam's beta^t) live in 0-d buffers, not in constants, so every step after the
-- first reuses the compiled kernels; opt.lr may be changed between steps (and between replays of
-- a step by lg.jit: it is written in place). Adam's step count (in beta^t) is one per optimizer
-- (as tinygrad), not one per parameter as PyTorch: they differ only for a parameter that was
-- skipped on some steps.
local core = require "luagrad.core"
local Tensor = require "luagrad.tensor"
local nn = require "luagrad.nn"

local dt = core.dtypes
local is_tensor, shape_str = Tensor.is_tensor, Tensor.shape_str

local optim = {}

local function fail(what, fmt, ...) error(what .. ": " .. fmt:format(...), 4) end

local function number(what, v, name, default, lo, hi)
  if v == nil then v = default end
  if type(v) ~= "number" or v < lo or (hi and v >= hi) then
    fail(what, "%s is %s, expected a number >= %s%s", name, tostring(v), tostring(lo), hi and (" and < " .. hi) or "")
  end
  return v
end

-- a 0-d float64 buffer holding v
local function scalar(v) return Tensor.from_values({ v }, {}, dt.float64) end

local Optimizer = {}

-- The learning rate lives in a 0-d float64 buffer (self._lr): opt.lr reads its value, and
-- opt.lr = v writes v into it in place, so that every step (and each replay of a step by lg.jit,
-- which does not call step) reads the new value without a new kernel.
local function set_lr(self, v)
  if type(v) ~= "number" or v < 0 then error(("%s: lr is %s, expected a number >= 0"):format(self.name, tostring(v)), 3) end
  local old = rawget(self, "_lr")
  if not old then
    rawset(self, "_lr", scalar(v))
  elseif v ~= self._lr_value then
    local buf = core.node_buffer(old.uop.src[1])
    buf:write({ v })
    -- a node of its own for the new value: what recent runs computed from the old one is not reused
    rawset(self, "_lr", Tensor.wrap(core.view_as(core.buffer_node(buf), old.uop)))
  end
  rawset(self, "_lr_value", v)
end

-- an optimizer class (its methods, over those of parent)
local function class(parent)
  local c = setmetatable({}, { __index = parent })
  c.__index = function(self, k)
    if k == "lr" then return rawget(self, "_lr_value") end
    return c[k]
  end
  c.__newindex = function(self, k, v)
    if k == "lr" then return set_lr(self, v) end
    rawset(self, k, v)
  end
  return c
end

local function new(what, class, params, opts, names)
  if type(params) ~= "table" or is_tensor(params) then fail(what, "params is a %s, expected a list of tensors", is_tensor(params) and "Tensor" or type(params)) end
  local list = {}
  for i, p in ipairs(params) do
    if not is_tensor(p) then fail(what, "parameter %d is a %s, expected a Tensor", i, type(p)) end
    if p.dtype.kind ~= "float" then fail(what, "parameter %d has dtype %s, expected a float dtype", i, tostring(p.dtype)) end
    list[i] = p
  end
  if opts ~= nil and type(opts) ~= "table" then fail(what, "options are a %s, expected a table", type(opts)) end
  for k in pairs(opts or {}) do
    local known = false
    for _, n in ipairs(names) do known = known or k == n end
    if not known then fail(what, "unknown option %s (options: %s)", tostring(k), table.concat(names, ", ")) end
  end
  local self = setmetatable({ name = what, params = list, state = {} }, class)
  return self, opts or {}
end

-- opt:zero_grad(): drops the .grad of every parameter
function Optimizer:zero_grad()
  for _, p in ipairs(self.params) do p.grad = nil end
end

-- opt:step(): one update of every parameter that has a .grad
function Optimizer:step()
  local todo = {}
  for i, p in ipairs(self.params) do
    local g = p.grad
    if g ~= nil then
      if not is_tensor(g) then error(("%s: the grad of parameter %d is a %s, expected a Tensor"):format(self.name, i, type(g)), 2) end
      local same = g.ndim == p.ndim
      for k = 1, p.ndim do same = same and g.shape[k] == p.shape[k] end
      if not same then
        error(("%s: the grad %s of parameter %d does not match its shape %s"):format(self.name, shape_str(g.shape), i,
          shape_str(p.shape)), 2)
      end
      todo[#todo + 1] = p
    end
  end
  if #todo == 0 then return end
  local out
  local function build() out = self:update(todo, self._lr) end
  local lg = package.loaded.luagrad
  if type(lg) == "table" and lg.no_grad then lg.no_grad(build) else build() end
  for _, p in ipairs(todo) do out[#out + 1] = p end
  for _, t in ipairs(nn.take_pending()) do out[#out + 1] = t end
  Tensor.realize_all(out)
end

-- ---- SGD -----------------------------------------------------------------------------------

local SGD = class(Optimizer)

-- SGD(params [, {lr = 0.001, momentum = 0, dampening = 0, nesterov = false, weight_decay = 0}])
function optim.SGD(params, opts)
  local self
  self, opts = new("SGD", SGD, params, opts, { "lr", "momentum", "dampening", "nesterov", "weight_decay" })
  self.lr = number("SGD", opts.lr, "lr", 0.001, 0)
  self.momentum = number("SGD", opts.momentum, "momentum", 0, 0)
  self.dampening = number("SGD", opts.dampening, "dampening", 0, 0)
  self.weight_decay = number("SGD", opts.weight_decay, "weight_decay", 0, 0)
  self.nesterov = opts.nesterov == true
  if self.nesterov and (self.momentum == 0 or self.dampening ~= 0) then
    fail("SGD", "nesterov needs a momentum > 0 and dampening 0 (momentum %s, dampening %s)", self.momentum, self.dampening)
  end
  return self
end

function SGD:update(todo, lr)
  local out, mom = {}, self.momentum
  for _, p in ipairs(todo) do
    local g = p.grad:cast(p.dtype)
    if self.weight_decay ~= 0 then g = g + p * self.weight_decay end
    if mom ~= 0 then
      local buf = self.state[p]
      if buf then
        buf:assign(buf * mom + g * (1 - self.dampening))
      else
        buf = Tensor.wrap(g.uop) -- a handle of its own (g may be p.grad)
        self.state[p] = buf
      end
      out[#out + 1] = buf
      g = self.nesterov and (g + buf * mom) or buf
    end
    p:assign(p - lr:cast(p.dtype) * g)
  end
  return out
end

-- ---- Adam, AdamW ---------------------------------------------------------------------------

local Adam = class(Optimizer)

local function adam(what, params, opts, decoupled, wd)
  local self
  self, opts = new(what, Adam, params, opts, { "lr", "betas", "eps", "weight_decay" })
  self.lr = number(what, opts.lr, "lr", 0.001, 0)
  local betas = opts.betas or { 0.9, 0.999 }
  if type(betas) ~= "table" then fail(what, "betas is a %s, expected {beta1, beta2}", type(betas)) end
  self.betas = { number(what, betas[1], "betas[1]", nil, 0, 1), number(what, betas[2], "betas[2]", nil, 0, 1) }
  self.eps = number(what, opts.eps, "eps", 1e-8, 0)
  self.weight_decay = number(what, opts.weight_decay, "weight_decay", wd, 0)
  self.decoupled = decoupled
  self.b1_t, self.b2_t = scalar(1.0), scalar(1.0) -- beta^t
  return self
end

-- Adam(params [, {lr = 0.001, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0}])
function optim.Adam(params, opts) return adam("Adam", params, opts, false, 0) end
-- AdamW(params [, {lr = 0.001, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0.01}]): Adam
-- with the weight decay applied to the parameter, not added to the gradient
function optim.AdamW(params, opts) return adam("AdamW", params, opts, true, 0.01) end

function Adam:update(todo, lr)
  local b1, b2, wd = self.betas[1], self.betas[2], self.weight_decay
  self.b1_t:assign(self.b1_t * b1)
  self.b2_t:assign(self.b2_t * b2)
  local out = { self.b1_t, self.b2_t }
  local step_size = lr / (1 - self.b1_t)  -- float64 scalars
  local bc2_sqrt = (1 - self.b2_t):sqrt()
  for _, p in ipairs(todo) do
    local d = p.dtype
    local g = p.grad:cast(d)
    local s = self.state[p]
    if s == nil then
      s = { m = Tensor.zeros(p.shape, { dtype = d }), v = Tensor.zeros(p.shape, { dtype = d }) }
      self.state[p] = s
    end
    local base = p
    if wd ~= 0 then
      if self.decoupled then base = p * (1 - lr * wd):cast(d) else g = g + p * wd end
    end
    s.m:assign(s.m * b1 + g * (1 - b1))
    s.v:assign(s.v * b2 + g * g * (1 - b2))
    out[#out + 1], out[#out + 2] = s.m, s.v
    local denom = s.v:sqrt() / bc2_sqrt:cast(d) + self.eps
    p:assign(base - step_size:cast(d) * s.m / denom)
  end
  return out
end

return optim
