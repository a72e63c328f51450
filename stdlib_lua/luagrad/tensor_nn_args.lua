-- Argument helpers of the functional nn ops (tensor_nn.lua, tensor_conv.lua); named tensor_*.lua
-- so that Tensor.raise reports their errors at the caller's line.
local Tensor = require "luagrad.tensor"

local is_tensor, raise = Tensor.is_tensor, Tensor.raise
local M = {}

function M.check(what, t, name)
  if not is_tensor(t) then raise("%s: %s is a %s, expected a Tensor", what, name, type(t)) end
  return t
end

function M.ceildiv(a, b) return -((-a) // b) end

-- an options table (nil: {}) whose keys are all among `names`
function M.options(what, opts, names)
  if opts == nil then return {} end
  if type(opts) ~= "table" or is_tensor(opts) then raise("%s: options are a %s, expected a table", what, type(opts)) end
  for k in pairs(opts) do
    local known = false
    for _, n in ipairs(names) do known = known or k == n end
    if not known then raise("%s: unknown option %s (options: %s)", what, tostring(k), table.concat(names, ", ")) end
  end
  return opts
end

-- a size option: an integer for every axis, or a table of n integers (>= lo)
function M.tuple(what, name, v, n, lo)
  local t = type(v) == "table" and v or {}
  if type(v) ~= "table" then
    for i = 1, n do t[i] = v end
  end
  if #t ~= n then raise("%s: %s has %d values, expected %d", what, name, #t, n) end
  for i = 1, n do
    if math.type(t[i]) ~= "integer" or t[i] < lo then
      raise("%s: %s is %s, expected integers >= %d", what, name, tostring(t[i]), lo)
    end
  end
  return t
end

function M.range(a, b)
  local t = {}
  for i = a, b do t[#t + 1] = i end
  return t
end

function M.concat(...)
  local out = {}
  for _, t in ipairs({ ... }) do
    for _, v in ipairs(t) do out[#out + 1] = v end
  end
  return out
end

return M
