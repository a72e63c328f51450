-- Shared helpers of the nn specs: fixture tensors (tests/fixtures/nn_torch.lua, written by
-- gen_nn.py from PyTorch) and comparison of results with them.
local lg = require "luagrad"
local H = require "ops.helpers"

local N = { fx = require "fixtures.nn_torch", close = H.close, flat = H.flat }

-- a float32 tensor of a fixture {shape =, data =}
function N.F(f) return lg.Tensor(f.data, { dtype = lg.float32 }):reshape(f.shape) end
-- an int32 tensor of a fixture
function N.I(f) return lg.Tensor(f.data, { dtype = lg.int32 }):reshape(f.shape) end

-- t matches the fixture f in shape and values (relative-or-absolute tolerance, default 1e-5)
function N.check(f, t, tol, what)
  local same = #f.shape == #t.shape
  for i = 1, #f.shape do same = same and f.shape[i] == t.shape[i] end
  assert(same, ("%s: shape %s expected, got %s"):format(what or "value", table.concat(f.shape, ","), table.concat(t.shape, ",")))
  H.close(f.data, H.flat(t:totable()), tol or 1e-5, what)
end

-- the kernels run while fn runs
function N.kernels(fn)
  local R = require "luagrad.realize"
  local n0 = R.kernels_run
  fn()
  return R.kernels_run - n0
end

return N
