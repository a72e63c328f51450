-- Seeded inputs for the optimizer's and the LLVM device's kernel specs: a generator of small
-- integers and realized tensors of small values of any dtype (zeros included: x / 0 and x % 0).
local lg = require "luagrad"
local M = {}

-- M.lcg(seed) -> rng: rng(n) gives an integer in [1, n]
function M.lcg(seed)
  local x = seed
  return function(n)
    x = (x * 1103515245 + 12345) % 2147483648
    return (x >> 8) % n + 1
  end
end

-- a realized tensor of `shape` and `dtype`: floats in eighths from -2 to 2, integers from -99 to
-- 100 (unsigned: 0 to 199), booleans
function M.mat(rng, shape, dtype)
  local vals, n = {}, 1
  for _, d in ipairs(shape) do n = n * d end
  for i = 1, n do
    if dtype.kind == "float" then
      vals[i] = (rng(33) - 17) / 8
    elseif dtype.kind == "bool" then
      vals[i] = rng(2) == 1
    elseif dtype.kind == "uint" then
      vals[i] = rng(200) - 1
    else
      vals[i] = rng(200) - 100
    end
  end
  return lg.Tensor(vals, { dtype = dtype }):reshape(shape):realize()
end

return M
