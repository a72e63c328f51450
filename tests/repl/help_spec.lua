-- help(x), ?x, :time, Tab completion (luagrad.help and the REPL around it), and that the quick
-- start (examples/quickstart.lua and the README's session) runs as written.
local D = require "repl.driver"
local run = D.run
local help = require "luagrad.help"
local lg = require "luagrad"

local setup = 'lg = require "luagrad"\nt = lg.Tensor({{1, 2}, {3, 4}})\n'

describe("help", function()
  it("prints a line for API functions, methods through a value, and values by their class", function()
    local out, err = run("", setup .. "?t.sum\nhelp(lg.uop.var)\n?lg.graph_rewrite\nhelp(t)\n" ..
      "?lg.uop.var('i', 0, 3)\n?lg.float32\nlg.help == help\n")
    assert.are.equal("", err)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.same({
      "t:sum([axis [, keepdim]]) -> Tensor: the sum over an axis, a table of axes, or everything",
      help.docs["uop.var"], help.docs.graph_rewrite, "a Tensor: " .. help.docs.Tensor,
      "a UOp: " .. help.docs.UOp, "a DType: " .. help.docs.DType, "true" }, lines)
  end)

  it("lists the members of a namespace, finds names, and tells where other functions are", function()
    local out, err = run("", setup .. "?lg.Tensor\nhelp('max')\nfunction f()\nend\n?f\n?print\n?nil\n?\n")
    assert.are.equal("", err)
    assert.matches(help.docs.Tensor .. "\n  members: new ", out, 1, true)
    assert.matches(" sum max min ", out, 1, true)
    assert.matches("\n" .. help.docs["UOp.max"] .. "\n" .. help.docs["Tensor.max"] .. "\n", out, 1, true)
    assert.matches("\na function defined at stdin:1 (no documentation)\na C function (no documentation)\n", out, 1, true)
    assert.matches("\nnil: nothing to document", out, 1, true)
    assert.matches("\nhelp(x) prints a line about x", out, 1, true)
  end)

  it("has a line for every function of lg, lg.Tensor, lg.UOp, lg.uop, lg.pattern and lg.rules", function()
    local missing = {}
    local function check(prefix, t)
      for k, v in pairs(t) do
        if type(k) == "string" and k:sub(1, 2) ~= "__" and (type(v) == "function" or prefix == "Tensor.")
          and not help.docs[prefix .. k] then
          missing[#missing + 1] = prefix .. k
        end
      end
    end
    check("", lg)
    for _, ns in ipairs({ "Tensor", "UOp", "uop", "pattern", "rules" }) do check(ns .. ".", lg[ns]) end
    table.sort(missing)
    assert.are.same({}, missing)
  end)

  it("documents only names that exist, or classes by their metatables' __name", function()
    local stale = {}
    local classes = { DType = lg.float32, Pattern = lg.pattern.var("x"), RuleSet = lg.rules.pass("symbolic") }
    for name in pairs(help.docs) do
      local v = lg
      if name ~= "lg" then
        for part in name:gmatch("[^.]+") do v = type(v) == "table" and rawget(v, part) or nil end
      end
      local class = classes[name]
      local ok = class and getmetatable(class).__name == "luagrad." .. name or not class and v ~= nil
      if not ok then stale[#stale + 1] = name end
    end
    assert.are.same({}, stale)
  end)

  it("is the global help only where none was defined", function()
    assert.are.equal("mine\n", (run("-i -e 'help = \"mine\"'", "help\n")):match("[^\n]*\n$"))
  end)
end)

describe("commands", function()
  it(":time on prints the time of each input, results included, until :time off", function()
    local out, err = run("", ":time on\n1 + 1\nx = 3;\n  :time off\n2 + 2\n:time\n:time\n5\n")
    assert.are.equal("", err)
    assert.matches("^timing on\n2\n%-%- %d+%.%d%d%d m?s\n%-%- %d+%.%d%d%d m?s\ntiming off\n4\ntiming on\ntiming off\n5\n$", out)
  end)

  it("refuses unknown commands and goes on; ::label:: is still Lua", function()
    local out, err = run("", ":bogus\n:time maybe\n::top:: x = 1\nx\n")
    assert.matches("unknown command :bogus (commands: ?expr for help(expr), :time [on|off])", err, 1, true)
    assert.matches("unknown command :time maybe", err, 1, true)
    assert.are.equal("1\n", out)
  end)
end)

describe("completion", function()
  local saved = {}
  local function setup_globals(values)
    for k, v in pairs(values) do
      saved[k] = rawget(_G, k)
      rawset(_G, k, v)
    end
  end
  before_each(function()
    setup_globals({ lg = lg, t = lg.Tensor({ { 1, 2 }, { 3, 4 } }), u = lg.uop.var("x", 0, 3), s = "abc" })
  end)
  after_each(function()
    for k, v in pairs(saved) do rawset(_G, k, v) end
    saved = {}
  end)

  local function has(list, x)
    for _, v in ipairs(list) do if v == x then return true end end
    return false
  end

  it("completes globals, keywords and fields of tables", function()
    assert.are.same({ "lg.Tensor" }, help.complete("lg.Te"))
    assert.are.same({ "lg.uop.const", "lg.uop.new", "lg.uop.var" }, help.complete("lg.uop."))
    assert.is_true(has(help.complete("pri"), "print"))
    assert.are.same({ "while" }, help.complete("whil"))
    assert.are.same({ "string.format" }, help.complete("string.form"))
  end)

  it("completes methods of a Tensor through its metatable, and its fields after .", function()
    local c = help.complete("t:su")
    assert.is_true(has(c, "t:sum") and has(c, "t:sub"))
    for _, w in ipairs(c) do assert.are.equal("t:su", w:sub(1, 4)) end
    assert.is_true(has(help.complete("t.sh"), "t.shape"))
    assert.is_false(has(help.complete("t:sh"), "t:shape"))
    assert.is_false(has(help.complete("t:re"), "t:repeat"))
    assert.is_true(has(help.complete("t:re"), "t:reshape"))
  end)

  it("completes methods and fields of userdata with a C __index, and of strings", function()
    assert.is_true(has(help.complete("u:si"), "u:simplify"))
    assert.is_true(has(help.complete("u.vm"), "u.vmin"))
    assert.are.same({ "s:upper" }, help.complete("s:up"))
  end)

  it("hides __ names unless asked, and gives nothing for what is not a name path", function()
    assert.is_false(has(help.complete("t:"), "t:__add"))
    assert.is_true(has(help.complete("t:__"), "t:__add"))
    for _, w in ipairs({ "lg..Te", "1.5", "nosuch.x", "t.shape.x.y", "(t):su", "u.op:x" }) do
      assert.are.same({}, help.complete(w), w)
    end
  end)

  it("runs on Tab at the terminal", function()
    local home = D.tmpdir()
    local out = D.on_terminal({ { 'lg = require "luagrad"\n', 0.6 }, { "t = lg.Tensor({{1, 2}, {3, 4}})\n" },
      { "x = lg.Te\t" }, { "\n" }, { "x == lg.Tensor\n" }, { "t:su\t\t" }, { "m(1)\n", 0.6 }, { "?t.numel\n" },
      { "\4" } }, home)
    D.rmdir(home)
    assert.matches("> x = lg.Tensor\n> x == lg.Tensor\ntrue\n", out, 1, true)
    assert.matches("t:sub%s+t:sum", out)
    assert.matches("> t:sum(1)\ntensor([4, 6])\n", out, 1, true)
    assert.matches("> ?t.numel\n" .. help.docs["Tensor.numel"] .. "\n", out, 1, true)
  end)
end)

describe("quick start", function()
  local readme = D.read_file(D.root .. "/README.md")
  local section = readme:match("\n## Quick start\n(.-)\n## ")


  it("examples/quickstart.lua runs, and DEBUG=4 shows the C kernel the README shows", function()
    local out, err, code = run(D.q(D.root .. "/examples/quickstart.lua"))
    assert.are.equal(0, code, err)
    assert.matches("tensor([140, 320])\n", out, 1, true)
    assert.matches("6 nodes before, 1 after:\n%0 = DEFINE_VAR int32 (\"x\", 0, 9)\n", out, 1, true)
    local dout, derr, dcode = run(D.q(D.root .. "/examples/quickstart.lua"), "", "DEBUG=4")
    assert.are.equal(0, dcode, derr)
    local kernel = section:match("\n```c\n(.-)```")
    assert.is_truthy(kernel)
    assert.matches(kernel, dout .. derr, 1, true)
  end)

  it("the README's session prints what it shows", function()
    local transcript = section:match("\n```\n%$ build/bin/luagrad\n(.-)```")
    assert.is_truthy(transcript)
    local input, expected = {}, {}
    for line in transcript:gmatch("[^\n]*\n") do
      local src = line:match("^>>? (.*)")
      if src then input[#input + 1] = src else expected[#expected + 1] = line end
    end
    local out, err = run("", table.concat(input))
    assert.are.equal("", err)
    assert.are.equal(table.concat(expected), out)
  end)

  it("names only commands that exist", function()
    assert.matches("\nquickstart: all\n\t$(EXE) examples/quickstart.lua\n", D.read_file(D.root .. "/Makefile"), 1, true)
    assert.matches("make quickstart", section, 1, true)
    assert.matches("DEBUG=4 build/bin/luagrad examples/quickstart.lua", section, 1, true)
  end)
end)
