-- pattern_spec.lua: the rule DSL. Each feature is checked through a one-rule set whose callback
-- records the captures of every match (and returns nil, so every match is seen), plus a fuzz
-- test of the C matcher against a naive matcher written here.
local core = require "luagrad.core"
local P = require "luagrad.pattern"

local U, int32, float32, bool = core.uop, core.dtypes.int32, core.dtypes.float32, core.dtypes.bool
local a, b = core.var("a", 0, 9), core.var("b", 0, 9)
local f = U("DEFINE_VAR", float32, {}, { "f", 0, 1 })

-- every match of pat on node: a list of {name = node} tables (in the matcher's order)
local function matches(pat, node)
  local found = {}
  local rs = core.compile({ { pat, function(m, _, n) if n == node then found[#found + 1] = m end end } }, "m")
  core.graph_rewrite(node, rs)
  return found
end
local function match(pat, node) return matches(pat, node)[1] end

describe("pattern DSL", function()
  local x, y, c = P.var("x"), P.var("y"), P.cvar("c")

  it("captures any node with var, constants with cvar, values with const", function()
    assert.are.same({ { x = a } }, matches(x, a))
    assert.are.same({}, matches(c, a))
    local k = core.const(int32, 3)
    assert.are.same({ { c = k } }, matches(c, k))
    assert.is_truthy(match(P.const(3), k))
    assert.is_nil(match(P.const(4), k))
    assert.is_truthy(match(P.const(3), core.const(float32, 3.0))) -- by value
    assert.is_truthy(match(P.const(true), core.const(bool, true)))
  end)

  it("turns numbers in operators into constants and builds every operator's op", function()
    local cases = {
      { x + 0, a + 0 }, { x - 1, a - 1 }, { x * 2, a * 2 }, { x // 3, a // 3 }, { x % 4, a % 4 },
      { x & 5, a & 5 }, { x | 6, a | 6 }, { x ~ 7, a ~ 7 }, { x << 1, a << 1 }, { x >> 2, a >> 2 },
      { x:lt(1), a:lt(1) }, { x:ne(1), a:ne(1) }, { x:eq(1), a:eq(1) }, { x:max(1), a:max(1) },
      { -x, -a }, { x:gt(1), a:gt(1) },
      { (x:lt(1)):where(x, 0), (a:lt(1)):where(a, 0) }, { x:cast("float32"), a:cast(float32) },
      { x / 2, f / 2 }, { x ^ 2, f ^ 2 },
    }
    for i, case in ipairs(cases) do
      assert.is_truthy(match(case[1], case[2]), "case " .. i .. ": " .. tostring(case[1]))
    end
    assert.is_nil(match(x + 1, a + 0))
    assert.is_nil(match(x - 1, a + 1))
    assert.is_nil(match(x:cast("int8"), a:cast(float32)))
  end)

  it("matches commutative ops in both orders, others in one", function()
    assert.are.same({ { x = a } }, matches(x + 0, 0 + a))
    assert.are.same({ { x = a, y = b }, { x = b, y = a } }, matches(x + y, a + b))
    assert.are.same({ { x = a, y = b } }, matches(x - y, a - b))
    assert.are.same({}, matches(x - 0, 0 - a))
    assert.are.same({ { x = a } }, matches(x:ne(1), U("CMPNE", bool, { core.const(int32, 1), a })))
    -- identical sources are not tried twice
    assert.are.same({ { x = a, y = a } }, matches(x + y, a + a))
  end)

  it("requires a name bound twice to be the same node", function()
    assert.is_truthy(match(x + x, a + a))
    assert.is_nil(match(x + x, a + b))
    assert.is_truthy(match((x * 2) + x, a * 2 + a))
    assert.is_nil(match((x * 2) + x, a * 2 + b))
  end)

  it("tries alternatives in order and every one of them", function()
    local p = P.any(x + 0, x * 1, P.var("y"))
    assert.are.same({ { x = a }, { y = a + 0 } }, matches(p, a + 0))
    assert.are.same({ { x = a }, { y = a * 1 } }, matches(p, a * 1))
    assert.are.same({ { y = a } }, matches(p, a))
    assert.are.same({ { y = a + 0 } }, matches(P.any { x * 1, y }, a + 0))
  end)

  it("matches op sets, op names and any op", function()
    local p = P.op({ "ADD", "MUL" }, { src = { x, 2 } })
    assert.is_truthy(match(p, a + 2))
    assert.is_truthy(match(p, 2 * a))
    assert.is_nil(match(p, a - 2))
    assert.is_truthy(match(P.op("SUB", { src = { x, y } }), a - b))
    assert.is_truthy(match(P.op(nil, { src = { x, y } }), a - b))
    assert.is_nil(match(P.op(nil, { src = { x } }), a - b))
    assert.is_truthy(match(P.op("SUB"), a - b)) -- sources not checked
  end)

  it("filters dtypes by dtype, name, class and list", function()
    local fa = a:cast(float32)
    assert.is_truthy(match(P.var("x", int32), a))
    assert.is_truthy(match(P.var("x", "int32"), a))
    assert.is_nil(match(P.var("x", "float32"), a))
    assert.is_truthy(match(P.var("x", "int"), a))
    assert.is_truthy(match(P.var("x", "sint"), a))
    assert.is_nil(match(P.var("x", "uint"), a))
    assert.is_truthy(match(P.var("x", "float"), fa))
    assert.is_truthy(match(P.var("x", { "int8", float32 }), fa))
    assert.is_truthy(match(x:dtype("bool"), a:lt(1)))
    assert.is_truthy(match(x:dtype("int8", "int32"), a))
    assert.is_nil(match(P.op("CAST", { src = { x }, dtype = "int8" }), fa))
    assert.is_truthy(match(x:lt(1):dtype("bool"), a:lt(1)))
  end)

  it("matches args", function()
    local v = core.var("i", 0, 3)
    assert.is_truthy(match(P.op("DEFINE_VAR", { arg = { "i", 0, 3 } }), v))
    assert.is_nil(match(P.op("DEFINE_VAR", { arg = { "i", 0, 4 } }), v))
    assert.is_truthy(match(P.op("CONST", { arg = 0 }), core.const(float32, 0)))
  end)

  it("matches each source, a prefix with rest, or exact sources", function()
    local s3 = U("SINK", core.dtypes.void, { a, b, a })
    assert.are.same({ { x = a } }, matches(P.op("SINK", { src = { x }, rest = true }), s3))
    assert.are.same({}, matches(P.op("SINK", { src = { x } }), s3))
    assert.is_truthy(match(P.op("SINK", { each = P.op("DEFINE_VAR") }), s3))
    assert.is_nil(match(P.op("SINK", { each = P.var("x") }), s3)) -- x would be a and b
    assert.is_truthy(match(P.op("SINK", { each = P.any(P.var("x"), P.var()) }), s3))
    assert.is_truthy(match(P.op("SINK", { each = x }), U("SINK", core.dtypes.void, {})))
  end)

  it("runs predicates only on structural matches, after the sources", function()
    local seen = {}
    local p = P.var("x"):pred(function(u)
      seen[#seen + 1] = u
      return u.op == "DEFINE_VAR"
    end) + 0
    assert.are.same({ { x = a } }, matches(p, a + 0))
    assert.are.same({ a }, seen)
    assert.are.same({}, matches(p, (a * 2) + 0))
    local q = P.op("ADD", { src = { x, 0 }, pred = function(u) return u.src[1] == b end })
    assert.is_nil(match(q, a + 0))
    assert.is_truthy(match(q, b + 0))
  end)

  it("names captures with named and with the name option", function()
    assert.are.same({ { s = a + 0, x = a } }, matches((x + 0):named("s"), a + 0))
    assert.are.same({ { s = a + 0 } }, matches(P.op("ADD", { name = "s" }), a + 0))
    assert.are.equal("ADD(x, 0)", tostring(x + 0)) -- named returns a copy
  end)

  it("prints patterns", function()
    assert.are.equal("s=ADD|MUL(x, ...)", tostring(P.op({ "ADD", "MUL" }, { src = { x }, rest = true, name = "s" })))
    assert.are.equal("any(x, 1)", tostring(P.any(x, 1)))
    assert.are.equal("SINK(each _)", tostring(P.op("SINK", { each = P.var() })))
    assert.are.equal("native(fold)", tostring(P.native("fold")))
  end)

  it("reports malformed patterns where they are built", function()
    local function err(fn) local ok, msg = pcall(fn) assert.is_false(ok) return msg end
    assert.matches("pattern_spec.lua:%d+: P.op: unknown op 'ADDD'", err(function() return P.op("ADDD") end))
    assert.matches("P.op: src%[2%] is a table, expected a pattern", err(function() return P.op("ADD", { src = { x, {} } }) end))
    assert.matches("ADD: operand 2 is a string", err(function() return x + "y" end))
    assert.matches("unknown dtype or dtype class 'int33'", err(function() return P.var("x", "int33") end))
    assert.matches("unknown option 'sources'", err(function() return P.op("ADD", { sources = {} }) end))
    assert.matches("give src or each", err(function() return P.op("ADD", { src = {}, each = x }) end))
    assert.matches("commutative pattern needs exactly 2 sources",
      err(function() return P.op("SUB", { src = { x }, commutative = true }) end))
    assert.matches("already has a predicate", err(function() return x:pred(print):pred(print) end))
    assert.matches("unknown native result 'flod'", err(function() return P.native("flod") end))
  end)
end)

-- ---- fuzz: the C matcher against a naive matcher ----------------------------------------
-- Pattern descriptions: {kind = "var"|"const"|"op"|"any", ...}; built into Patterns and matched
-- here by enumerating every match in the engine's order (alternatives in order, commutative
-- sources as written and then swapped unless both sources are the same node).

local OPS = { "ADD", "MUL", "SUB", "MAX", "CMPLT" }
local NAMES = { "x", "y", "z" }

local function rand_desc(rng, depth)
  local r = rng(100)
  if depth <= 0 or r <= 30 then
    if rng(3) == 1 then return { kind = "const", v = rng(0, 2) } end
    return { kind = "var", name = rng(4) <= 3 and NAMES[rng(#NAMES)] or nil, dt = rng(6) == 1 and "bool" or nil }
  end
  if r <= 40 then return { kind = "any", alts = { rand_desc(rng, depth - 1), rand_desc(rng, depth - 1) } } end
  local op = OPS[rng(#OPS)]
  local d = { kind = "op", op = op, src = { rand_desc(rng, depth - 1), rand_desc(rng, depth - 1) } }
  if rng(5) == 1 then d.name = NAMES[rng(#NAMES)] end
  if rng(6) == 1 then d.pred = true end
  return d
end

local function pred_fn(u) return u.op ~= "CONST" or u.arg ~= 1 end -- "not the constant 1"

local function build(d)
  if d.kind == "const" then return P.const(d.v) end
  if d.kind == "var" then return P.var(d.name, d.dt) end
  if d.kind == "any" then return P.any(build(d.alts[1]), build(d.alts[2])) end
  return P.op(d.op, { src = { build(d.src[1]), build(d.src[2]) }, name = d.name, pred = d.pred and pred_fn or nil })
end

-- naive matcher: calls k(bindings) for every match, bindings copied per branch
local function ref_match(d, u, binds, k)
  local function bind(name, node, kk)
    if not name then return kk(binds) end
    if binds[name] then
      if binds[name] == node then return kk(binds) end
      return
    end
    local nb = {}
    for n, v in pairs(binds) do nb[n] = v end
    nb[name] = node
    return kk(nb)
  end
  if d.kind == "any" then
    ref_match(d.alts[1], u, binds, k)
    return ref_match(d.alts[2], u, binds, k)
  end
  if d.kind == "const" then
    if u.op == "CONST" and (u.arg == d.v or (u.arg == true and d.v == 1) or (u.arg == false and d.v == 0)) then return k(binds) end
    return
  end
  if d.kind == "var" then
    if d.dt and u.dtype.name ~= d.dt then return end
    return bind(d.name, u, k)
  end
  if u.op ~= d.op then return end
  local comm = d.op ~= "SUB" and d.op ~= "CMPLT"
  return bind(d.name, u, function(b0)
    local function order(s1, s2)
      ref_match(d.src[1], s1, b0, function(b1)
        ref_match(d.src[2], s2, b1, function(b2)
          if not d.pred or pred_fn(u) then k(b2) end
        end)
      end)
    end
    order(u.src[1], u.src[2])
    if comm and u.src[1] ~= u.src[2] then order(u.src[2], u.src[1]) end
  end)
end

local function ref_matches(d, u)
  local out = {}
  ref_match(d, u, {}, function(b) out[#out + 1] = b end)
  return out
end

local function rand_graph(rng, leaves, depth)
  if depth <= 0 or rng(4) == 1 then return leaves[rng(#leaves)] end
  local op = OPS[rng(#OPS)]
  local s1, s2 = rand_graph(rng, leaves, depth - 1), rand_graph(rng, leaves, depth - 1)
  if op == "CMPLT" then return s1:lt(s2):where(s1, s2) end -- keep int32 for the parents
  return U(op, int32, { s1, s2 })
end

describe("matcher fuzz", function()
  it("agrees with a naive matcher on random patterns and graphs (same matches, same order)", function()
    local seed = tonumber(os.getenv("FUZZ_SEED") or "") or 1234
    local rng = (function()
      local state = seed
      return function(lo, hi)
        state = (state * 1103515245 + 12345) % 2147483648
        if not hi then lo, hi = 1, lo end
        return lo + state % (hi - lo + 1)
      end
    end)()
    local leaves = { a, b, core.const(int32, 0), core.const(int32, 1), core.const(int32, 2) }
    local compared, matched = 0, 0
    for _ = 1, 300 do
      local d = rand_desc(rng, 3)
      local pat = build(d)
      local g = rand_graph(rng, leaves, 4)
      local got = {}
      local rs = core.compile({ { pat, function(m, _, n) got[n] = got[n] or {}; table.insert(got[n], m) end } }, "fuzz")
      core.graph_rewrite(g, rs)
      for _, n in ipairs(g:toposort()) do
        local want = ref_matches(d, n)
        assert.are.same(want, got[n] or {}, tostring(pat) .. " on\n" .. tostring(n))
        compared = compared + 1
        if #want > 0 then matched = matched + 1 end
      end
    end
    assert.is_true(matched > 50, "the fuzz should produce matches (got " .. matched .. " of " .. compared .. ")")
  end)
end)
