-- Bad input to every family of tensor ops: a Lua error that names the op and the offending
-- shapes or values, raised at the caller's line.
local lg = require "luagrad"
local T = lg.Tensor

local a = T({ { 1, 2, 3 }, { 4, 5, 6 } })
local f = T({ { 1.5, 2, 3 }, { 4, 5, 6 } })

-- {code, the message it must give}; `a` is int32 (2,3), `f` float32 (2,3)
local cases = {
  -- elementwise
  { "a + T({1, 2})", "add: shapes (2,3) and (2) do not broadcast (axis 2: 3 vs 2)" },
  { "a * {}", "mul: expected a Tensor, a number or a boolean, got a table" },
  { "a:where(a, T.zeros(5))", "where: shapes (2,3) and (5) do not broadcast" },
  { "a:bitwise_and(f)", "bitwise_and: not defined for float32" },
  { "f:lshift(1)", "lshift: not defined for float32" },
  { "T({true}):neg()", "neg: not defined for bool" },
  { "a:cast('nope')", "cast: 'nope' is not a dtype" },
  { "a:clip()", "clip: give at least one of lo and hi" },
  { "a:gelu('x')", "gelu: approximate is x, expected 'none' or 'tanh'" },
  -- reductions
  { "a:sum(3)", "sum: axis 3 is out of range for 2 dimensions (2,3)" },
  { "a:sum({1, 1})", "sum: axis 1 appears twice" },
  { "a:max(-3)", "max: axis -3 is out of range for 2 dimensions (2,3)" },
  { "a:argmax(5)", "argmax: axis 5 is out of range" },
  { "a:std(7)", "std: axis 7 is out of range" },
  { "a:var(1, true, 'x')", "var: correction is a string, expected a number" },
  { "a:logsumexp(3)", "logsumexp: axis 3 is out of range" },
  { "a:softmax(3)", "softmax: axis 3 is out of range" },
  -- movement
  { "a:reshape(5)", "reshape: (2,3) has 6 elements, (5) has 5" },
  { "a:reshape(-1, -1)", "reshape: size 2 is -1 in (-1,-1)" },
  { "a:permute(1)", "permute: 1 axes given for 2 dimensions" },
  { "a:permute(1, 1)", "permute: axis 1 appears twice" },
  { "a:transpose(1, 4)", "transpose: axis 4 is out of range for 2 dimensions" },
  { "a:expand(3, 3)", "expand: axis 1 has size 2 and cannot become 3 (tensor (2,3) to (3,3))" },
  { "a:squeeze(5)", "squeeze: axis 5 is out of range" },
  { "a:flip(3)", "flip: axis 3 is out of range" },
  { "a:pad({{1, 1}, {0, 0}, {0, 0}})", "pad: expected at most 2 {before, after} pairs for the tensor (2,3), got 3 pairs" },
  { "a:pad({{-1, 1}})", "pad: axis 1 needs {before, after} integers >= 0" },
  { "a:shrink({{1, 3}})", "shrink: axis 1: {1, 3} is outside 1..2" },
  { "a:tile(2, 'x')", "tile: size 2 is x, expected an integer >= 0" },
  -- joining, splitting, indexing
  { "T.cat({a, T.zeros(3, 2)}, 1)", "cat: tensor 2 has shape (3,2), tensor 1 (2,3) (axis 2 differs)" },
  { "T.cat({}, 1)", "cat: expected a non-empty list of tensors" },
  { "T.stack({a, T.zeros(3, 2)})", "stack: tensor 2 has shape (3,2), tensor 1 (2,3)" },
  { "a:split(0)", "split: size is 0, expected an integer >= 1" },
  { "a:chunk(0)", "chunk: n is 0, expected an integer >= 1" },
  { "a[0]", "index: 0 is out of range for axis 1 of size 2 (2,3)" },
  { "a[{1, 4}]", "index: 4 is out of range for axis 2 of size 3 (2,3)" },
  { "a[{1, 2, 3}]", "index: 3 keys for a tensor of 2 dimensions (2,3)" },
  { "a[1.5]", "index: axis 1: index 1.5 is not an integer" },
  { "a[{{1, 4}}]", "index: axis 1: range {1, 4} is outside 1..2 (2,3)" },
  { "a:gather(1, T({{3, 1, 1}}))", "gather: index 3 is out of range for axis 1 of size 2 (tensor (2,3))" },
  { "a:gather(2, T({{0}, {1}}))", "gather: index 0 is out of range for axis 2 of size 3" },
  { "a:gather(1, f)", "gather: index has dtype float32, expected an integer dtype" },
  -- linear algebra
  { "a:matmul(a)", "matmul: shapes (2,3) and (2,3) do not match (3 vs 2)" },
  { "a:matmul(T(3))", "matmul: both operands need at least 1 dimension, got (2,3) and ()" },
  { "a:dot(a)", "dot: shapes (2,3) and (2,3) do not match (3 vs 2)" },
  -- creation and reading
  { "T.zeros(-1)", "shape: size 1 is -1, expected an integer >= 0" },
  { "T.full({2}, 'x')", "full: value is a string, expected a number or a boolean" },
  { "T.arange(1, 10, 0)", "arange: step is 0" },
  { "T.eye(-1)", "eye: sizes -1, -1, expected integers >= 0" },
  { "T.randint(5, 1, 3)", "randint: bounds 5, 1, expected integers lo < hi" },
  { "T.rand(2, {dtype = lg.int32})", "rand: dtype int32 is not a float dtype" },
  { "T({1, 2}, {dtype = 'int33'})", "Tensor: unknown dtype 'int33'" },
  { "T({{1}, {2, 3}})", "Tensor: ragged table: item [2] has 2 items, expected 1 items" },
  { "T({1, {2}})", "Tensor: item [2] is a table, expected a number or a boolean" },
  { "T(print)", "Tensor: cannot make a tensor of a function" },
  { "a:item()", "item: the tensor has 6 elements (2,3), expected 1" },
  { "a.shape = {1}", "Tensor: the field shape is read-only" },
}

describe("bad input", function()
  for _, c in ipairs(cases) do
    it(c[1], function()
      local stmt = c[1]:find("^a%.%w+ =") and c[1] or "local _ = " .. c[1] -- not a tail call: the line stays
      local fn = assert(load("local a, f, T, lg = ... " .. stmt, "=input"))
      local ok, err = pcall(fn, a, f, T, lg)
      assert.is_false(ok, "no error")
      assert.matches(c[2], err, 1, true)
      assert.matches("^input:1: ", err) -- raised at the caller's line
    end)
  end
end)
