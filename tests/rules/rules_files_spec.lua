-- rules_files_spec.lua: rule files on the search path, passes, and changing rules in a running
-- session (add, define, reload) with no rebuild.
local core = require "luagrad.core"
local P = require "luagrad.pattern"
local rules = require "luagrad.rules"

local a = core.var("a", 0, 9)

local function tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p '" .. dir .. "'"))
  return dir
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local function err(fn, ...)
  local ok, msg = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return msg
end

describe("rule files", function()
  local dir
  before_each(function()
    dir = tmpdir()
    rules.path { dir }
  end)
  after_each(function()
    rules.path {}
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("searches the user's directories, then LUAGRAD_RULES_PATH, then the installed rules", function()
    local path = rules.path()
    assert.are.equal(dir, path[1])
    assert.matches("luagrad/rules$", path[#path])
    local list = rules.load("example") -- installed: stdlib_lua/luagrad/rules -> rewrite_rules
    assert.is_true(#list > 0)
    write(dir .. "/example.lua", "return {}") -- the user's directory comes first
    assert.are.same({}, rules.load("example"))
  end)

  it("honours LUAGRAD_RULES_PATH", function()
    write(dir .. "/envpass.lua", [[
      local P = require "luagrad.pattern"
      return { { P.var("x") * 1, P.var("x") } }]])
    local script = [[local core = require "luagrad.core"
      local a = core.var("a", 0, 9)
      io.write(tostring(core.graph_rewrite(a * 1, "envpass") == a))]]
    local lua = os.getenv("LUA") or "lua5.4"
    local p = io.popen("LUAGRAD_RULES_PATH='/nonexistent:" .. dir .. "' " .. lua .. " -e '" .. script .. "' 2>&1")
    local out = p:read("a")
    p:close()
    assert.are.equal("true", out)
  end)

  it("compiles a pass once, and reloads it when the file changes", function()
    write(dir .. "/mine.lua", [[
      local P = require "luagrad.pattern"
      local x = P.var("x")
      return { { x + 0, x } }]])
    assert.are.equal(a, core.graph_rewrite(a + 0, "mine"))
    local rs = rules.pass("mine")
    assert.are.equal(rs, rules.pass("mine"))
    write(dir .. "/mine.lua", [[
      local P = require "luagrad.pattern"
      local x = P.var("x")
      return { { x + 0, x * 2 } }]])
    assert.are.equal(a, core.graph_rewrite(a + 0, "mine")) -- still the compiled pass
    rules.reload("mine")
    assert.are_not.equal(rs, rules.pass("mine"))
    assert.are.equal(a * 2, core.graph_rewrite(a + 0, "mine"))
  end)

  it("defines passes of several files, reloaded when one of them changes", function()
    write(dir .. "/one.lua", "local P = require 'luagrad.pattern' return { { P.var('x') + 0, P.var('x') } }")
    write(dir .. "/two.lua", "local P = require 'luagrad.pattern' return { { P.var('x') * 1, P.var('x') } }")
    rules.define("both", { "one", "two" })
    assert.are.equal(a, core.graph_rewrite((a * 1) + 0, "both"))
    assert.are.equal(2, #rules.pass("both"))
    write(dir .. "/two.lua", "return {}")
    rules.reload("two")
    assert.are.equal(a * 1, core.graph_rewrite((a * 1) + 0, "both"))
    rules.define("both", { "two" })
    assert.are.equal(0, #rules.pass("both"))
  end)

  it("adds rules to a pass, after its files or first", function()
    write(dir .. "/addto.lua", "local P = require 'luagrad.pattern' return { { P.var('x') + 0, P.var('x') } }")
    local x = P.var("x")
    assert.are.equal(a, core.graph_rewrite(a + 0, "addto"))
    rules.add("addto", { x + 0, x * 3 }) -- after the file's rule: never reached
    assert.are.equal(a, core.graph_rewrite(a + 0, "addto"))
    rules.add("addto", { x + 0, x * 2 }, { first = true })
    assert.are.equal(a * 2, core.graph_rewrite(a + 0, "addto"))
    assert.are.equal(3, #rules.pass("addto"))
    assert.matches("capture 'y' is used in the template", err(rules.add, "addto", { x + 0, P.var("y") }))
  end)

  it("reports missing and broken rule files", function()
    assert.matches("no rule file nope.lua in " .. dir:gsub("%p", "%%%0"), err(rules.load, "nope"))
    assert.matches("no rule file nope.lua", err(core.graph_rewrite, a, "nope"))
    write(dir .. "/broken.lua", "return {")
    assert.matches("broken.lua:1:", err(rules.load, "broken"))
    write(dir .. "/notalist.lua", "return 42")
    assert.matches("notalist.lua returned a number, expected a list of rules", err(rules.load, "notalist"))
    write(dir .. "/badrule.lua", "local P = require 'luagrad.pattern'\nreturn {\n  { P.var('x') + 0, P.var('y') },\n}\n")
    assert.matches("badrule.lua:3: capture 'y' is used in the template but never bound", err(rules.pass, "badrule"))
    write(dir .. "/badop.lua", "local P = require 'luagrad.pattern'\nreturn { { P.op('ADDD'), 0 } }\n")
    assert.matches("badop.lua:2: P.op: unknown op 'ADDD'", err(rules.pass, "badop"))
  end)

  it("names rules by file and line unless they are named", function()
    write(dir .. "/named.lua", "local P = require 'luagrad.pattern'\nlocal x = P.var('x')\nreturn {\n"
      .. "  { x + 0, x },\n  { x * 1, function(m) return m.x end, name = 'times one' },\n}\n")
    local s = rules.pass("named"):stats()
    assert.matches("named.lua:4$", s[1].name)
    assert.are.equal("times one", s[2].name)
  end)
end)
