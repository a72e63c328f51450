-- Tensors end to end on the CPU: values against plain Lua computations written here.
local lg = require "luagrad"
local T = lg.Tensor

local function close(want, got, tol, path)
  path = path or "value"
  if type(want) == "table" then
    assert.are.equal(#want, #got, path .. ": length")
    for i = 1, #want do close(want[i], got[i], tol, path .. "[" .. i .. "]") end
  elseif type(want) == "number" and math.type(want) == "float" then
    assert(math.abs(want - got) <= (tol or 1e-6) * math.max(1, math.abs(want)),
      ("%s: want %.9g, got %.9g"):format(path, want, got))
  else
    assert.are.equal(want, got, path)
  end
end

describe("tensor", function()
  it("makes tensors from nested tables and reads them back", function()
    local t = T({ { 1, 2, 3 }, { 4, 5, 6 } })
    assert.are.same({ 2, 3 }, t.shape)
    assert.are.equal(lg.int32, t.dtype)
    assert.are.same({ { 1, 2, 3 }, { 4, 5, 6 } }, t:totable())
    assert.are.equal(lg.float32, T({ 1, 2.5 }).dtype)
    assert.are.equal(lg.bool, T({ true, false }).dtype)
    assert.are.same({ 0.5, 1.5 }, T({ 0.5, 1.5 }, { dtype = lg.float64 }):totable())
    assert.are.equal(7, T(7):item())
  end)

  it("rejects ragged and odd tables with the position", function()
    assert.error_matches(function() T({ { 1, 2 }, { 3 } }) end, "ragged table: item [2] has 1 items, expected 2", 1, true)
    assert.error_matches(function() T({ 1, "x" }) end, "item [2] is a string", 1, true)
  end)

  it("adds, multiplies and divides with broadcasting and weak scalars", function()
    local a = T({ { 1, 2, 3 }, { 4, 5, 6 } })
    local b = T({ 10, 20, 30 })
    assert.are.same({ { 11, 22, 33 }, { 14, 25, 36 } }, (a + b):totable())
    assert.are.same({ { 2, 4, 6 }, { 8, 10, 12 } }, (a * 2):totable())
    assert.are.equal(lg.float32, (a * 0.5).dtype)
    close({ { 0.5, 1.0, 1.5 }, { 2.0, 2.5, 3.0 } }, (a / 2):totable())
    assert.are.same({ { true, false, false }, { false, false, false } }, a:lt(2):totable())
    assert.error_matches(function() return a + T({ 1, 2 }) end,
      "add: shapes (2,3) and (2) do not broadcast (axis 2: 3 vs 2)", 1, true)
  end)

  it("reduces over axes with keepdim, and over everything", function()
    local a = T({ { 1, 2, 3 }, { 4, 5, 6 } })
    assert.are.same({ 5, 7, 9 }, a:sum(1):totable())
    assert.are.same({ { 6 }, { 15 } }, a:sum(-1, true):totable())
    assert.are.equal(21, a:sum():item())
    assert.are.same({ 3, 6 }, a:max(2):totable())
    assert.are.same({ 1, 4 }, a:min(2):totable())
    close({ 2.0, 5.0 }, a:mean(2):totable())
  end)

  it("moves without copying: reshape, permute, expand, pad, shrink, flip", function()
    local a = T({ { 1, 2, 3 }, { 4, 5, 6 } })
    assert.are.same({ { 1, 4 }, { 2, 5 }, { 3, 6 } }, a:permute(2, 1):totable())
    assert.are.same({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, a:reshape(3, -1):totable())
    assert.are.same({ { 1, 1 }, { 2, 2 } }, T({ { 1 }, { 2 } }):expand(2, 2):totable())
    assert.are.same({ 0, 1, 2, 0 }, T({ 1, 2 }):pad({ { 1, 1 } }):totable())
    assert.are.same({ { 2, 3 }, { 5, 6 } }, a:shrink({ {}, { 2, 3 } }):totable())
    assert.are.same({ { 3, 2, 1 }, { 6, 5, 4 } }, a:flip(2):totable())
    assert.are.same({ 6 }, a:flatten().shape)
  end)

  it("prints columns aligned and picks the number format as PyTorch 1.13 does", function()
    -- the expected strings are PyTorch's output for the same values
    assert.are.equal("tensor([[ 1.0000, -2.5000],\n        [10.0000,  3.0000]])", tostring(T({ { 1.0, -2.5 }, { 10.0, 3.0 } })))
    assert.are.equal("tensor([[  1, -20],\n        [300,   4]])", tostring(T({ { 1, -20 }, { 300, 4 } })))
    assert.are.equal("tensor([1.0000e-05, 1.0000e+03])", tostring(T({ 1e-5, 1e3 })))
    assert.are.equal("tensor([1.0000e+00, 1.0000e+09])", tostring(T({ 1.0, 1e9 })))
    assert.are.equal("tensor([   nan, 1.5000,   -inf])", tostring(T({ 0 / 0, 1.5, -1 / 0 })))
    assert.are.equal("tensor([1.0000e-05, 2.0000e-05])", tostring(T({ 1e-5, 2e-5 })))
    assert.are.equal("tensor([0., 0.])", tostring(T({ 0.0, 0.0 })))
    assert.are.equal("tensor(3.5000)", tostring(T(3.5)))
  end)

  it("prints like PyTorch: empty sizes, dtypes, and only the edges of big tensors", function()
    assert.are.equal("tensor([], size=(0, 3))", tostring(T.zeros(0, 3)))
    assert.are.equal("tensor([1., 2.], dtype=float64)", tostring(T({ 1, 2 }, { dtype = lg.float64 })))
    assert.are.equal("tensor([   0,    1,    2,  ..., 1997, 1998, 1999])", tostring(T.arange(2000)))
    local lines = {}
    for line in tostring(T.arange(1600):reshape(40, 40)):gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.are.equal(7, #lines)
    assert.are.equal("        ...,", lines[4])
  end)
end)
