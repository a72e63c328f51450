-- Gradients of every differentiable tensor op, in float64, against two independent references:
-- PyTorch's gradients (tests/fixtures/grad_torch.lua, made by gen_grad.py, which holds the
-- inputs and cotangents too) and central finite differences of sum(f(inputs) * cot) computed here.
local lg = require "luagrad"
local T = lg.Tensor
local f64 = lg.float64

local fixture = dofile(os.getenv("LG_ROOT") .. "/tests/fixtures/grad_torch.lua")

local IDX = T({ { 1, 3 }, { 2, 2 } })
local ONEHOT = T({ { 0, 1, 0 }, { 1, 0, 0 } }, { dtype = f64 })

-- the case functions of gen_grad.py, with 1-based axes
local CASES = {
  add = function(a, b) return a + b end,
  sub = function(a, b) return a - b end,
  mul = function(a, b) return a * b end,
  square = function(a) return a * a end,
  div = function(a, b) return a / b end,
  scalar_ops = function(a) return (3 - a) * 2 / 4 + 1 / a end,
  pow = function(a, b) return a ^ b end,
  pow_const = function(a) return a ^ 3 end,
  rpow = function(a) return 2 ^ a end,
  mod = function(a, b) return a % b end,
  idiv = function(a, b) return a // b end,
  neg = function(a) return -a end,
  reciprocal = function(a) return a:reciprocal() end,
  exp = function(a) return a:exp() end,
  log = function(a) return a:log() end,
  exp2 = function(a) return a:exp2() end,
  log2 = function(a) return a:log2() end,
  sqrt = function(a) return a:sqrt() end,
  rsqrt = function(a) return a:rsqrt() end,
  sin = function(a) return a:sin() end,
  cos = function(a) return a:cos() end,
  tan = function(a) return a:tan() end,
  abs = function(a) return a:abs() end,
  sign = function(a) return a:sign() * a end,
  floor = function(a) return a:floor() * a end,
  ceil = function(a) return a:ceil() * a end,
  round = function(a) return a:round() * a end,
  trunc = function(a) return a:trunc() * a end,
  erf = function(a) return a:erf() end,
  relu = function(a) return a:relu() end,
  sigmoid = function(a) return a:sigmoid() end,
  tanh = function(a) return a:tanh() end,
  silu = function(a) return a:silu() end,
  gelu = function(a) return a:gelu() end,
  gelu_tanh = function(a) return a:gelu("tanh") end,
  maximum = function(a, b) return a:maximum(b) end,
  minimum = function(a, b) return a:minimum(b) end,
  clip = function(a) return a:clip(-0.5, 0.5) end,
  where = function(a, b) return a:gt(0):where(a * 2, b) end,
  sum = function(a) return a:sum() end,
  sum_axis = function(a) return a:sum(2) end,
  sum_keepdim = function(a) return a:sum({ 1, 3 }, true) end,
  prod = function(a) return a:prod(2) end,
  prod_zeros = function(a) return a:prod(2) end,
  max = function(a) return a:max() end,
  max_axis = function(a) return a:max(2) end,
  min_axis = function(a) return a:min(1) end,
  mean = function(a) return a:mean() end,
  mean_axes = function(a) return a:mean({ 1, 3 }) end,
  var = function(a) return a:var(2) end,
  var_pop = function(a) return a:var(2, true, 0) end,
  std = function(a) return a:std() end,
  logsumexp = function(a) return a:logsumexp(2) end,
  softmax = function(a) return a:softmax(2) end,
  log_softmax = function(a) return a:log_softmax(1) end,
  cross_entropy = function(a) return -(a:log_softmax(2) * ONEHOT):sum(2):mean() end,
  layernorm = function(x) return (x - x:mean(2, true)) / (x:var(2, true, 0) + 1e-5):sqrt() end,
  matmul = function(a, b) return a:matmul(b) end,
  matmul_batched = function(a, b) return a:matmul(b) end,
  matmul_vec = function(a, b) return a:matmul(b) end,
  matmul_matvec = function(a, b) return a:matmul(b) end,
  dot = function(a, b) return a:dot(b) end,
  attention = function(q, k, v) return (q:matmul(k:transpose()) / math.sqrt(q.shape[3])):softmax(-1):matmul(v) end,
  reshape = function(a) return a:reshape(3, 2) * T.arange(6):reshape(3, 2) end,
  permute = function(a) return a:permute(3, 1, 2) end,
  transpose = function(a) return a:transpose(1, 2) end,
  expand = function(a) return a:expand(2, 3) end,
  flatten = function(a) return a:flatten(2, 3) end,
  squeeze = function(a) return a:squeeze(2) end,
  unsqueeze = function(a) return a:unsqueeze(1) end,
  flip = function(a) return a:flip(2) end,
  pad = function(a) return a:pad({ { 1, 0 }, { 0, 2 } }) end,
  pad_value = function(a) return a:pad({ { 0, 0 }, { 1, 1 } }, 1.5) end,
  shrink = function(a) return a:shrink({ { 1, 2 }, { 2, 3 } }) end,
  tile = function(a) return a:tile(2, 1) end,
  ["repeat"] = function(a) return a["repeat"](a, 1, 2, 1) end,
  split = function(a)
    local q = a:split(2, 2)
    return q[1] * q[2]
  end,
  chunk = function(a)
    local q = a:chunk(3, 1)
    return q[1] + q[2] * q[3]
  end,
  cat = function(a, b) return T.cat({ a, b }, 2) end,
  stack = function(a, b) return T.stack({ a, b }, 2) end,
  index = function(a) return a[{ { 1, 2 }, 2 }] end,
  index_step = function(a) return a[{ {}, { 1, 5, 2 } }] end,
  setitem = function(t, v)
    local c = t * 1
    c[{ {}, 2 }] = v
    return c
  end,
  gather = function(a) return a:gather(2, IDX) end,
  contiguous = function(a) return a:contiguous() * a end,
  detach = function(a) return a * a:detach() end,
}

-- what central differences see of a case whose function holds part of its input fixed
local FD_CASES = {
  detach = function(case)
    local held = T.from_values(case.inputs[1].values, case.inputs[1].shape, f64)
    return function(a) return a * held end
  end,
}

-- PyTorch's erf is exact; luagrad's (and so gelu's) is Abramowitz-Stegun 7.1.26, whose slope
-- is off by up to ~1e-6
local TORCH_TOL = { erf = 1e-5, gelu = 1e-5 }

local function inputs_of(case, values)
  local xs = {}
  for i, inp in ipairs(case.inputs) do
    xs[i] = T.from_values(values and values[i] or inp.values, inp.shape, f64)
  end
  return xs
end

local function flat(t)
  local out = {}
  local function walk(v)
    if type(v) == "table" then
      for _, x in ipairs(v) do walk(x) end
    else
      out[#out + 1] = v
    end
  end
  walk(t:totable())
  return out
end

local function close(got, want, tol, what)
  assert.are.equal(#want, #got, what .. ": sizes")
  for i = 1, #want do
    if math.abs(got[i] - want[i]) > tol * math.max(1, math.abs(want[i])) then
      error(("%s: element %d is %.12g, expected %.12g (tolerance %g)"):format(what, i, got[i], want[i], tol), 2)
    end
  end
end

-- sum(f(inputs) * cot) at the given input values
local function loss(case, fn, cot, values)
  return (fn(table.unpack(inputs_of(case, values))) * cot):sum():item()
end

describe("gradients of the tensor ops", function()
  it("covers every case of the fixture, and only those", function()
    local names = {}
    for _, case in ipairs(fixture) do
      assert.is_function(CASES[case.name], case.name)
      names[case.name] = true
    end
    for name in pairs(CASES) do assert.is_true(names[name], name) end
  end)

  for _, case in ipairs(fixture) do
    it(case.name .. " matches PyTorch and central differences", function()
      local fn = CASES[case.name]
      local xs = inputs_of(case)
      local cot = T.from_values(case.cot.values, case.cot.shape, f64)
      local out = fn(table.unpack(xs))
      local grads = lg.grad(out, xs, cot)
      for i, x in ipairs(xs) do
        assert.are.same(x.shape, grads[i].shape)
        assert.are.equal(f64, grads[i].dtype)
        local got = flat(grads[i])
        close(got, case.grads[i], TORCH_TOL[case.name] or 1e-9, ("%s: input %d vs PyTorch"):format(case.name, i))
        local h, fd, fdfn = 1e-6, {}, FD_CASES[case.name] and FD_CASES[case.name](case) or fn
        for j = 1, #case.inputs[i].values do
          local vals = {}
          for k, inp in ipairs(case.inputs) do vals[k] = { table.unpack(inp.values) } end
          vals[i][j] = case.inputs[i].values[j] + h
          local up = loss(case, fdfn, cot, vals)
          vals[i][j] = case.inputs[i].values[j] - h
          fd[j] = (up - loss(case, fdfn, cot, vals)) / (2 * h)
        end
        close(got, fd, 1e-6, ("%s: input %d vs central differences"):format(case.name, i))
      end
    end)
  end
end)
