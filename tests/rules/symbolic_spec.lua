-- symbolic.lua: targeted cases, then fuzzing against an independent evaluator (C int32
-- semantics written out here in Lua, not taken from the engine).
local lg = require "luagrad"
local U = lg.uop

local function simplify(u) return lg.graph_rewrite(u, "symbolic") end

-- ---- an independent evaluator -------------------------------------------------------------
local function wrap32(v)
  v = v & 0xffffffff
  return v >= 0x80000000 and v - 0x100000000 or v
end
local function tdiv(a, b)
  local q = a // b
  if a % b ~= 0 and (a < 0) ~= (b < 0) then q = q + 1 end
  return q
end

local eval
local ops = {
  ADD = function(a, b) return wrap32(a + b) end,
  SUB = function(a, b) return wrap32(a - b) end,
  MUL = function(a, b) return wrap32(a * b) end,
  IDIV = function(a, b) return wrap32(tdiv(a, b)) end,
  MOD = function(a, b) return a - b * tdiv(a, b) end,
  MAX = function(a, b) return math.max(a, b) end,
  NEG = function(a) return wrap32(-a) end,
  CMPLT = function(a, b) return a < b end,
  CMPNE = function(a, b) return a ~= b end,
  CMPEQ = function(a, b) return a == b end,
  WHERE = function(c, a, b) if c then return a end return b end,
  AND = function(a, b) if type(a) == "boolean" then return a and b end return a & b end,
  OR = function(a, b) if type(a) == "boolean" then return a or b end return a | b end,
  XOR = function(a, b) if type(a) == "boolean" then return a ~= b end return wrap32(a ~ b) end,
}
function eval(u, env, memo)
  local v = memo[u]
  if v ~= nil then return v end
  if u.op == "CONST" then v = u.arg
  elseif u.op == "DEFINE_VAR" then v = env[u.arg[1]]
  else
    local args = {}
    for i, s in ipairs(u.src) do args[i] = eval(s, env, memo) end
    v = assert(ops[u.op], "evaluator has no " .. u.op)(table.unpack(args))
  end
  memo[u] = v
  return v
end

-- ---- targeted cases ----------------------------------------------------------------------
describe("symbolic", function()
  local i, j = U.var("i", 0, 9), U.var("j", 0, 3)
  local k = U.var("k", -8, 8)

  it("folds index division and remainder by bounds", function()
    assert.are.equal(i, simplify((i * 4 + j) // 4))
    assert.are.equal(j, simplify((i * 4 + j) % 4))
    assert.are.equal(i * 2, simplify((i * 8 + j) // 4))
    assert.are.equal(i + 1, simplify((i * 4 + j + 4) // 4))
    -- coefficients split around the divisor: 17a + b = 16a + (a + b), with a + b < 16
    local a, b = U.var("a", 0, 2), U.var("b", 0, 13)
    assert.are.equal(simplify(a + b), simplify((a * 17 + b) % 16))
    assert.are.equal(a, simplify((a * 17 + b) // 16))
    -- a factor of the divisor split off with the terms below it: 28y + x = 28 * y + x, x < 28
    local y, x, n = U.var("y", 0, 27), U.var("x", 0, 27), U.var("n", 0, 63)
    assert.are.equal(simplify(y // 2), simplify((y * 28 + x) // 56))
    assert.are.equal(simplify((y % 2) * 28 + x), simplify((y * 28 + x) % 56))
    -- the remainder of a quotient: ((784n + 28y + x) // 2) % 14 is x // 2
    assert.are.equal(simplify(x // 2), simplify(((n * 784 + y * 28 + x) // 2) % 14))
  end)

  it("folds constants with C semantics", function()
    local c = function(v) return U.const(lg.int32, v) end
    assert.are.equal(-3, simplify(c(-7) // c(2)).arg)
    assert.are.equal(-1, simplify(c(-7) % c(2)).arg)
    assert.are.equal(-2147483648, simplify(c(2147483647) + c(1)).arg)
    assert.are.equal(44, simplify(U.const(lg.int8, 100) + U.const(lg.int8, -56) + U.const(lg.int8, 0)).arg)
  end)

  it("removes identities", function()
    assert.are.equal(i, simplify(i + 0))
    assert.are.equal(i, simplify(i * 1))
    assert.are.equal(0, simplify(i * 0).arg)
    assert.are.equal(0, simplify(i - i).arg)
    assert.are.equal(i, simplify(i:max(i)))
    assert.are.equal(i, simplify(-(-i)))
    -- a REDUCE of the op's identity; a MAX of a constant only over ranges that are not empty
    local f32 = lg.float32
    local function reduce(op, v, n)
      local r = U.new("RANGE", lg.int32, { U.const(lg.int32, n) }, { 0, 1 })
      return U.new("REDUCE", f32, { U.const(f32, v), r }, op)
    end
    assert.are.equal("CONST", simplify(reduce("ADD", 0, 5)).op)
    assert.are.equal("REDUCE", simplify(reduce("ADD", 1, 5)).op)
    assert.are.equal(2.5, simplify(reduce("MAX", 2.5, 5)).arg)
    assert.are.equal("REDUCE", simplify(reduce("MAX", 2.5, 0)).op)
  end)

  it("combines constant chains and like terms", function()
    assert.are.equal(i + 5, simplify((i + 2) + 3))
    assert.are.equal(i * 6, simplify((i * 2) * 3))
    assert.are.equal(i * 5, simplify(i * 2 + i * 3))
    local sum = simplify((i + 1) + (j + 2))
    assert.are.equal(3, sum.src[2].arg)
    assert.is_true(sum.src[1] == i + j or sum.src[1] == j + i)
  end)

  it("decides comparisons, max and where from bounds", function()
    assert.are.equal(true, simplify(i:lt(10)).arg)
    assert.are.equal(false, simplify(i:lt(0)).arg)
    assert.are.equal(i, simplify(i:max(0)))
    assert.are.equal(j, simplify(i:lt(10):where(j, k)))
    assert.are.equal(i:lt(3), simplify((i + 2):lt(5)))
    assert.are.equal(i:gt(0), simplify((i + 1):gt(1)))
    assert.are.equal(i:lt(3), simplify((i * 4):lt(9)))
  end)

  it("removes lossless cast pairs and keeps lossy ones", function()
    assert.are.equal(i, simplify(i:cast(lg.int64):cast(lg.int32)))
    local wide = U.var("w", 0, 100000)
    local pair = wide:cast(lg.int8):cast(lg.int32)
    assert.are.equal(pair, simplify(pair))
  end)

  it("leaves float algebra that rounding forbids", function()
    local f = U.var("f", 0, 1, lg.int32):cast(lg.float32)
    local g = f + 1.5
    assert.are.equal((g - 1.5) + 1.5, simplify((g - 1.5) + 1.5))
    assert.are.equal(f, simplify(f * 1.0))
  end)
end)

-- ---- fuzzing -------------------------------------------------------------------------------
describe("symbolic fuzz", function()
  local vars = { { "a", 0, 9 }, { "b", 0, 15 }, { "c", -8, 8 }, { "d", 1, 4 } }
  local V = {}
  for _, v in ipairs(vars) do V[#V + 1] = U.var(v[1], v[2], v[3]) end

  local function gen(rnd, depth)
    local r = rnd(100)
    if depth == 0 or r <= 20 then
      if rnd(3) == 1 then return U.const(lg.int32, rnd(25) - 9) end
      return V[rnd(#V)]
    end
    local a = gen(rnd, depth - 1)
    if r <= 40 then return a + gen(rnd, depth - 1) end
    if r <= 50 then return a - gen(rnd, depth - 1) end
    if r <= 62 then return a * (rnd(2) == 1 and rnd(9) - 3 or gen(rnd, depth - 1)) end
    if r <= 74 then return a // rnd(12) end
    if r <= 86 then return a % rnd(12) end
    if r <= 90 then return a:max(gen(rnd, depth - 1)) end
    if r <= 93 then return -a end
    return a:lt(gen(rnd, depth - 1)):where(gen(rnd, depth - 1), gen(rnd, depth - 1))
  end

  local function check(seed, count, depth)
    local state = seed
    local function rnd(n) -- a small LCG so the cases are stable across Lua versions
      state = (state * 1103515245 + 12345) % 2147483648
      return state % n + 1
    end
    for _ = 1, count do
      local e = gen(rnd, depth)
      local s = simplify(e)
      assert.is_true(s:size() <= e:size(), "simplified form grew:\n" .. tostring(e) .. "=>\n" .. tostring(s))
      for _ = 1, 24 do
        local env = {}
        for _, v in ipairs(vars) do env[v[1]] = v[2] + rnd(v[3] - v[2] + 1) - 1 end
        local want, got = eval(e, env, {}), eval(s, env, {})
        if want ~= got then
          local at = {}
          for _, v in ipairs(vars) do at[#at + 1] = v[1] .. "=" .. env[v[1]] end
          error(("mismatch at %s: %s vs %s\n%s=>\n%s"):format(table.concat(at, " "), tostring(want), tostring(got),
            tostring(e), tostring(s)))
        end
      end
    end
  end

  it("agrees with the original on shallow expressions", function() check(1, 600, 3) end)
  it("agrees with the original on deep expressions", function() check(7, 200, 6) end)
end)
