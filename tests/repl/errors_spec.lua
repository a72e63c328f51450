-- Bad input at the prompt: each mistake is an error that names the problem and the shapes, and
-- the session goes on with everything computed before it intact.
local D = dofile((os.getenv("LG_ROOT") or ".") .. "/tests/repl/driver.lua")

describe("the REPL survives bad tensor input", function()
  it("reports each mistake and keeps the session", function()
    local out, err, code = D.run("", table.concat({
      "lg = require 'luagrad'",
      "a = lg.Tensor({{1, 2, 3}, {4, 5, 6}})",
      "a + lg.Tensor({1, 2})",
      "a:sum(3)",
      "lg.Tensor({{1, 2}, {3}})",
      "lg.Tensor({1, 'x'})",
      "a:reshape(4, 2)",
      "a:permute(1, 1)",
      "a[3]",
      "a:matmul(a)",
      "a:sum()",
    }, "\n") .. "\n")
    assert.are.equal(0, code, err)
    local want = {
      "shapes (2,3) and (2) do not broadcast",
      "axis 3 is out of range for 2 dimensions",
      "ragged table: item [2] has 1 items, expected 2",
      "item [2] is a string",
      "reshape: (2,3) has 6 elements, (4,2) has 8",
      "permute: axis 1 appears twice",
      "index: 3 is out of range for axis 1 of size 2 (2,3)",
      "matmul: shapes (2,3) and (2,3) do not match (3 vs 2)",
    }
    for _, w in ipairs(want) do assert.matches(w, err, 1, true) end
    assert.matches("tensor(21)\n", out, 1, true) -- the session still computes
  end)
end)
