-- The luagrad executable: lua.c's command line, and the interactive loop driven through a pipe
-- (and through a pseudo-terminal when `script` from util-linux is there).
local D = require "repl.driver"
local q, run, write_file, read_file = D.q, D.run, D.write_file, D.read_file

describe("repl through a pipe", function()
  it("prints the values of expressions", function()
    local out, err, code = run("", "1 + 2\n'a', nil, 3\nprint('hi')\nx = 5\nx\n")
    assert.are.equal("3\na\tnil\t3\nhi\n5\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("prints an error with a traceback and goes on", function()
    local out, err, code = run("", "error('boom')\n6 * 7\nlocal t = nil; t.x = 1\n'still here'\n")
    assert.are.equal("42\nstill here\n", out)
    assert.matches("stdin:1: boom\nstack traceback:", err, 1, true)
    assert.matches("attempt to index a nil value (local 't')", err, 1, true)
    assert.are.equal(0, code)
  end)

  it("continues incomplete input over several lines", function()
    local input = "function f(a)\n  local b = a * 2\n  return b\nend\nf(21)\nf(1,\n2)\nt = {\n 1,\n 2 }\n#t\n1 +\n2\n"
    local out, err = run("", input)
    assert.are.equal("42\n2\n2\n3\n", out)
    assert.are.equal("", err)
  end)

  it("reports a syntax error at once and an unfinished statement at the end", function()
    local out, err = run("", "x = = 1\n1\nfunction g(\n")
    assert.are.equal("1\n", out)
    assert.matches("stdin:1: unexpected symbol near '='", err, 1, true)
    assert.matches("<eof>", err, 1, true)
  end)

  it("is silenced by a trailing ;", function()
    local out = run("", "x = 5;\nx;\nx * 2 ;  \nprint('p');\nx\n")
    assert.are.equal("p\n5\n", out)
  end)

  it("keeps the last result in _", function()
    local out = run("", "6 * 7\n_ + 1\n10;\n_\nx = 1\n_\n'a', 'b'\n_\n")
    assert.are.equal("42\n43\n10\n10\na\tb\na\n", out)
  end)

  it("preloads luagrad.core from the library it links, and finds luagrad without LUA_PATH", function()
    local out, err = run("", "lg = require 'luagrad'\npackage.preload['luagrad.core'] ~= nil\n" ..
      "lg.uop.var('i', 0, 9).op\npackage.loaded['luagrad.core'] == lg.core\n", "-u LUA_PATH -u LUA_CPATH")
    assert.are.equal("", err)
    assert.are.equal("true\nDEFINE_VAR\ntrue\n", out)
  end)
end)

describe("command line", function()
  it("runs -e chunks in order and does not read stdin", function()
    local out, _, code = run("-e 'x = 20' -e 'print(x + 1)'", "print('not run')\n")
    assert.are.equal("21\n", out)
    assert.are.equal(0, code)
  end)

  it("runs a script with its arguments in arg and ...", function()
    local script = write_file("print(#arg, arg[0] ~= nil, arg[1], arg[2], select('#', ...), ...)\n" ..
      "print(arg[-1])\n")
    local out, _, code = run("-e 'y = 1' " .. q(script) .. " a 'b c'")
    os.remove(script)
    assert.are.equal("2\ttrue\ta\tb c\t2\ta\tb c\ny = 1\n", out)
    assert.are.equal(0, code)
  end)

  it("fails with the message and status 1 when a chunk fails", function()
    local out, err, code = run("-e 'error(\"bad\")' -e 'print(1)'")
    assert.are.equal("", out)
    assert.matches("^luagrad: %(command line%):1: bad\nstack traceback:", err)
    assert.are.equal(1, code)
    local _, err2, code2 = run("/nonexistent/script.lua")
    assert.matches("cannot open /nonexistent/script.lua", err2, 1, true)
    assert.are.equal(1, code2)
  end)

  it("requires modules with -l mod and -l g=mod", function()
    local out, err = run("-l luagrad -l G=luagrad.core -e 'print(type(luagrad.graph_rewrite), G == luagrad.core)'")
    assert.are.equal("", err)
    assert.are.equal("function\ttrue\n", out)
    local _, err2, code = run("-l no_such_module")
    assert.matches("module 'no_such_module' not found", err2, 1, true)
    assert.are.equal(1, code)
  end)

  it("enters the loop after the script with -i", function()
    local out, _, code = run("-i -e 'x = 3'", "x * 2\n")
    assert.matches("^luagrad %(Lua 5%.4", out)
    assert.matches("\n6\n$", out)
    assert.are.equal(0, code)
  end)

  it("runs stdin as a file with -", function()
    local out = run("- a1", "print('from stdin', ...)\nreturn 5\n")
    assert.are.equal("from stdin\ta1\n", out)
  end)

  it("shows the version with -v and refuses unknown options", function()
    assert.matches("Lua 5%.4", (run("-v")))
    local _, err, code = run("-x")
    assert.matches("unrecognized option '-x'", err, 1, true)
    assert.matches("usage: luagrad", err, 1, true)
    assert.are.equal(1, code)
    local _, err2 = run("-e")
    assert.matches("'-e' needs argument", err2, 1, true)
  end)

  it("runs LUA_INIT first, unless -E", function()
    assert.are.equal("7\n", (run("", "x\n", "LUA_INIT='x = 7'")))
    local init = write_file("y = 'from file'\n")
    assert.are.equal("from file\n", (run("", "y\n", "LUA_INIT=@" .. init)))
    os.remove(init)
    assert.are.equal("nil\n", (run("-E -i", "x\n", "LUA_INIT='x = 7'")):match("[^\n]*\n$"))
  end)
end)

describe("repl on a terminal", function()
  local home
  before_each(function() home = D.tmpdir() end)
  after_each(function() D.rmdir(home) end)

  local function on_terminal(steps) return D.on_terminal(steps, home) end

  it("uses readline, prompts and keeps the history", function()
    local out = on_terminal({ { "1 + 1\n" }, { "for i = 1, 2 do\n" }, { "print(i * 10) end\n" }, { "\4" } })
    assert.matches("luagrad (Lua 5.4", out, 1, true)
    assert.matches("> 1 + 1\n2\n", out, 1, true)
    assert.matches(">> print(i * 10) end\n10\n20\n", out, 1, true)
    local history = read_file(home .. "/.luagrad_history")
    assert.are.equal("1 + 1\nfor i = 1, 2 do\nprint(i * 10) end\n", history)
  end)

  it("interrupts a running chunk and drops a line on Ctrl-C", function()
    local out = on_terminal({ { "while true do end\n", 0.5 }, { "\3", 0.5 }, { "2 + 2\n" },
      { "half a line" }, { "\3" }, { "3 + 3\n" }, { "\4" } })
    assert.matches("interrupted!", out, 1, true)
    assert.matches("\n4\n", out, 1, true)
    assert.matches("\n6\n", out, 1, true)
  end)
end)
