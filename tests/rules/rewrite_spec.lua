-- rewrite_spec.lua: graph_rewrite: results (templates, callbacks, natives), the walk orders,
-- fixed points, memoization, deep graphs, errors and statistics.
local core = require "luagrad.core"
local P = require "luagrad.pattern"

local U, rewrite = core.uop, core.graph_rewrite
local int8, int32, float32, bool = core.dtypes.int8, core.dtypes.int32, core.dtypes.float32, core.dtypes.bool
local x, y, c, c1, c2 = P.var("x"), P.var("y"), P.cvar("c"), P.cvar("c1"), P.cvar("c2")
local a, b = core.var("a", 0, 9), core.var("b", 0, 9)
local f = U("DEFINE_VAR", float32, {}, { "f", 0, 1 })

local function err(fn, ...)
  local ok, msg = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return msg
end

describe("graph_rewrite", function()
  it("applies template rules in C and returns the new root", function()
    local rules = { { x + 0, x }, { x * 1, x }, { x * 0, 0 } }
    assert.are.equal(a + b, rewrite((a + 0) * 1 + (0 + b), rules))
    assert.are.equal(core.const(int32, 0), rewrite(a * 0, rules))
    assert.are.equal(a, rewrite(a, rules))
  end)

  it("builds templates with the dtypes of their context", function()
    local rules = {
      { P.var("x", "float") * 2, x + x },
      { x:max(0), x:lt(0):where(0, x) },
      { x - x, 0 },
      { x:ne(x), false },
      { (x // 1):cast("float32"), x:cast("float32") + 0.5 },
    }
    local r = rewrite(f * 2, rules)
    assert.are.equal(f + f, r)
    r = rewrite(f:max(0), rules)
    assert.are.equal(f:lt(0):where(0, f), r) -- the constants are float32, the condition bool
    assert.are.equal(float32, r.src[2].dtype)
    local i8 = U("DEFINE_VAR", int8, {}, { "i", 0, 3 })
    assert.are.equal(core.const(int8, 0), rewrite(i8 - i8, rules))
    assert.are.equal(core.const(bool, false), rewrite(a:ne(a), rules))
    assert.are.equal(a:cast(float32) + 0.5, rewrite((a // 1):cast(float32), rules))
  end)

  it("calls callbacks with captures, ctx and the node", function()
    local seen = {}
    local ctx = { calls = 0 }
    local rules = { { (x + c):named("s"), function(m, cx, node)
      cx.calls = cx.calls + 1
      seen = { m = m, node = node }
      return m.x * m.c.arg
    end } }
    assert.are.equal(a * 3, rewrite(a + 3, rules, { ctx = ctx }))
    assert.are.equal(1, ctx.calls)
    assert.are.equal(a + 3, seen.node)
    assert.are.same({ x = a, c = core.const(int32, 3), s = a + 3 }, seen.m)
  end)

  it("passes captures, ctx and node to every kind of callback", function()
    local got = {}
    local rules = {
      { x * 1, function(...) got.all = select("#", ...) end },
      { x * 1, function(_, ...) got.var = { ... } end },
      { x * 1, function(m, cx) got.two = { m.x, cx } end },
    }
    rewrite(a * 1, rules, { ctx = "ctx" })
    assert.are.equal(3, got.all)
    assert.are.same({ "ctx", a * 1 }, got.var)
    assert.are.same({ a, "ctx" }, got.two)
  end)

  it("falls through to the next match and the next rule when a callback returns nil", function()
    local order = {}
    local rules = {
      { x + y, function(m)
        order[#order + 1] = m.x.op
        if m.x.op == "DEFINE_VAR" and m.y.op == "DEFINE_VAR" then return m.x end
      end, name = "first" },
      { x + c, function(m) order[#order + 1] = "second" return m.x * m.c.arg end, name = "second" },
    }
    assert.are.equal(a * 3, rewrite(3 + a, rules))
    assert.are.same({ "CONST", "DEFINE_VAR", "second" }, order) -- both orders, then rule 2
    -- returning the node itself is "no change" too
    assert.are.equal(a + b, rewrite(a + b, { { x + y, function(_, _, node) return node end } }))
  end)

  it("rewrites to a fixed point", function()
    local rules = {
      { x + 0, x },
      { (x + c1) + c2, x + (c1 + c2) },
      { P.op({ "ADD", "MUL" }, { each = P.cvar() }), P.native("fold") },
    }
    assert.are.equal(a + 6, rewrite(((a + 1) + 2) + 3, rules))
    assert.are.equal(a, rewrite(((a + 1) + 2) + -3, rules))
  end)

  it("runs native results: constant folding and known bounds", function()
    assert.are.equal(core.const(int32, 20), rewrite((U("CONST", int32, {}, 2) + 3) * 4,
      { { P.op({ "ADD", "MUL" }, { each = P.cvar() }), P.native("fold") } }))
    local z = core.var("z", 0, 0)
    assert.are.equal(core.const(int32, 5), rewrite(z + 5, { { P.op("ADD"), P.native("bounds") } }))
    assert.are.equal(a + 5, rewrite(a + 5, { { P.op("ADD"), P.native("bounds") } }))
  end)

  it("visits sources first bottom-up, the node first top-down", function()
    local g = (a + 1) * 2
    local function order(mode)
      local seen = {}
      rewrite(g, { { P.var(), function(_, _, n) seen[#seen + 1] = n.op end } }, { mode = mode })
      return seen
    end
    assert.are.same({ "DEFINE_VAR", "CONST", "ADD", "CONST", "MUL" }, order(nil))
    assert.are.same({ "DEFINE_VAR", "CONST", "ADD", "CONST", "MUL" }, order("bottom_up"))
    assert.are.same({ "MUL", "ADD", "DEFINE_VAR", "CONST", "CONST" }, order("top_down"))
  end)

  it("top-down rewrites a node until no rule applies, then its sources, then a rebuilt parent", function()
    local seen = {}
    local rules = {
      { P.var(), function(_, _, n) seen[#seen + 1] = tostring(n.op) .. (n == a and "a" or n == b and "b" or "") end },
      { P.op("DEFINE_VAR", { arg = { "a", 0, 9 } }), function() return b end },
    }
    assert.are.equal(b + 1, rewrite(a + 1, rules, { mode = "top_down" }))
    assert.are.same({ "ADD", "DEFINE_VARa", "DEFINE_VARb", "CONST", "ADD" }, seen)
  end)

  it("memoizes: each distinct node is rewritten once", function()
    local calls = 0
    local s = a + 0
    for _ = 1, 40 do s = s * s end -- 2^40 paths, 42 distinct nodes
    local rules = { { x + 0, function(m) calls = calls + 1 return m.x end } }
    local opts = {}
    local r = rewrite(s, rules, opts)
    assert.are.equal(1, calls)
    assert.are.equal(1, opts.rewrites)
    assert.is_true(opts.visits < 100)
    local t = r
    for _ = 1, 40 do t = t.src[1] end
    assert.are.equal(a, t)
  end)

  it("handles a 1,000,000-node chain in both modes", function()
    local g = a
    for i = 1, 1000000 do g = (i % 2 == 1) and g + 0 or g * 1 end
    local rules = core.compile({ { x + 0, x }, { x * 1, x } }, "chain")
    -- bottom-up, the rebuilt nodes are a + 0 and a * 1 again: memoized after two rewrites
    for mode, n in pairs { bottom_up = 2, top_down = 1000000 } do
      local opts = { mode = mode }
      assert.are.equal(a, rewrite(g, rules, opts))
      assert.are.equal(n, opts.rewrites)
    end
  end)

  it("stops a rewrite that never converges and names the rules", function()
    local rules = core.compile({ { x + y, x * y, name = "swap" }, { x * y, x + y, name = "unswap" } }, "cycle")
    local msg = err(rewrite, a + 1, rules)
    assert.are.equal("graph_rewrite(cycle): no fixed point after 1000 rewrites of one node (ADD int32); "
      .. "last rules: swap (500x), unswap (500x)", msg)
    assert.matches("no fixed point after 10 rewrites", err(rewrite, a + 1, rules, { budget = 10, mode = "top_down" }))
    -- a rewrite that grows without end: x -> x - 0, with x - 0 -> (x - 0) - 0 ...
    local grow = core.compile({ { (x - y):named("s"), P.var("s") - 0, name = "grow" } }, "grow")
    assert.matches("grow %(1000x%)", err(rewrite, a - 1, grow))
  end)

  it("turns a Lua error in a callback into an error naming the rule, and carries on", function()
    collectgarbage()
    local live = core.live_nodes()
    local rules = { { x + 7, function() error("boom") end, name = "boomer" } }
    local msg = err(rewrite, (a + 7) * 2, rules)
    assert.matches("^boomer: .*rewrite_spec.lua:%d+: boom$", msg)
    assert.matches("^bad: returned a string, expected a UOp or nil$",
      err(rewrite, a + 1, { { x + 1, function() return "x" end, name = "bad" } }))
    assert.matches("^pred: .*nope", err(rewrite, a + 1, { { x:pred(function() error("nope") end) + 1, x, name = "pred" } }))
    assert.are.equal(a, rewrite(a + 0, { { x + 0, x } }))
    collectgarbage()
    assert.are.equal(live, core.live_nodes())
  end)

  it("works from coroutines and from inside callbacks", function()
    local inner = core.compile({ { x * 1, x } }, "inner")
    local rules = { { x + 0, function(m, cx) return rewrite(m.x, inner, { ctx = cx }) end } }
    local co = coroutine.wrap(function() return rewrite((a * 1) + 0, rules, { ctx = {} }) end)
    assert.are.equal(a, co())
  end)

  it("collects statistics per rule on request", function()
    local rs = core.compile({ { x + 0, x, name = "add0" }, { x * 1, function(m) return m.x end, name = "mul1" } }, "st")
    rewrite((a + 0) * 1 + b, rs, { stats = true })
    local s = rs:stats()
    assert.are.equal(2, #s)
    assert.are.equal("add0", s[1].name)
    -- a + 0 is tried; a + b is ruled out by its sources' ops before matching starts
    assert.are.same({ 1, 1, 1 }, { s[1].tries, s[1].matches, s[1].rewrites })
    assert.are.same({ 1, 1, 1 }, { s[2].tries, s[2].matches, s[2].rewrites })
    assert.is_true(s[1].ns > 0 and s[2].ns > 0)
    rewrite(a * 1, rs) -- without stats = true nothing is counted
    assert.are.equal(1, rs:stats()[2].tries)
    rs:reset_stats()
    assert.are.equal(0, rs:stats()[1].tries)
    assert.are.equal("st", rs:name())
    assert.are.equal(2, #rs)
    assert.are.equal("RuleSet(st, 2 rules)", tostring(rs))
  end)

  it("rejects malformed rules when they are compiled", function()
    assert.matches("rewrite_spec.lua:%d+: capture 'y' is used in the template but never bound",
      err(core.compile, { { x + 0, y } }))
    assert.matches("rewrite_spec.lua:%d+: rule named: capture 'y'", err(core.compile, { { x + 0, y, name = "named" } }))
    assert.matches("the result is a string", err(core.compile, { { x + 0, "x" } }))
    assert.matches("the result is a nil", err(core.compile, { { x + 0 } }))
    assert.matches("rule 1 of rules: unknown item 3", err(core.compile, { { x + 0, x, "name" } }))
    assert.matches("rule 2 of s is a string", err(core.compile, { { x + 0, x }, "oops" }, "s"))
    assert.matches("ADD never has 3 sources", err(core.compile, { { P.op("ADD", { src = { x, y, c } }), x } }))
    assert.matches("a template node with an op set cannot be built",
      err(core.compile, { { x + 0, P.op({ "ADD", "MUL" }, { src = { x, x } }) } }))
    assert.matches("a template node needs a capture name", err(core.compile, { { x + 0, P.var() } }))
    assert.matches("a template cannot have alternatives", err(core.compile, { { x + 0, P.any(x, 1) } }))
  end)

  it("checks its options", function()
    assert.matches("mode must be \"bottom_up\" or \"top_down\", got topdown", err(rewrite, a, {}, { mode = "topdown" }))
    assert.matches("unknown option 'mdoe'", err(rewrite, a, {}, { mdoe = "top_down" }))
    assert.matches("budget must be an integer", err(rewrite, a, {}, { budget = -1 }))
    assert.matches("UOp expected", err(rewrite, {}, {}))
  end)

  it("keeps its memo when a callback runs a nested rewrite over the same nodes", function()
    local g = ((a * 1 + b) * (a * 1 + b)) + ((a * 1 + b) + 0)
    local plain = { { x * 1, x }, { x + 0, x } }
    local nested = { { x * 1, x }, { x + 0, x },
      { P.op("ADD", { src = { x, y } }), function(m, root)
        rewrite(root, plain) -- marks every node of the outer graph, in progress ones too
      end } }
    local o1, o2 = {}, { ctx = g }
    local want = rewrite(g, core.compile(plain), o1)
    assert.are.equal(want, rewrite(g, core.compile(nested), o2))
    assert.are.equal(o1.nodes, o2.nodes) -- nothing of the outer walk was processed twice
  end)
end)
