-- The embedding examples: a C host with its own Lua state (examples/embed/host.c), a C program
-- on the plain C API with lg_open (examples/embed/c_api.c), both built with `make examples`, and
-- LuaJIT through its FFI (examples/embed/ffi.lua).
local root = os.getenv("LG_ROOT") or "."
local build = os.getenv("LG_BUILD") or "build"
-- make's B: relative to the source tree when it is inside it, like the default build/
local make_b = build:sub(1, #root + 1) == root .. "/" and build:sub(#root + 2) or build

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Run a shell command; returns its output (stdout and stderr) and exit code.
local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

describe("embedding", function()
  setup(function()
    local out, code = sh(string.format("make -s -C %s B=%s examples", q(root), q(make_b)))
    assert(code == 0, "make examples failed:\n" .. out)
  end)

  it("runs a Lua script from a C host and reads its results back", function()
    local out, code = sh(string.format("env -u LUA_PATH -u LUA_CPATH %s %s 9", q(build .. "/examples/host"),
      q(root .. "/examples/embed/script.lua")))
    assert.are.equal(0, code, out)
    assert.matches("expression:\n.*IDIV.*\nsimplified:\n", out)
    local simplified = out:match("simplified:\n(.-)largest value")
    assert.are.equal('%0 = DEFINE_VAR int32 ("x", 0, 9)\n', simplified)
    assert.matches("largest value: 9\n", out, 1, true)
    assert.matches("sum of squares by tensors: 285\n", out, 1, true) -- 0^2 + ... + 9^2
  end)

  it("reports a failing script with its message", function()
    local out, code = sh(string.format("%s %s nine", q(build .. "/examples/host"),
      q(root .. "/examples/embed/script.lua")))
    assert.are.equal(1, code)
    assert.matches("expected an integer upper bound", out, 1, true)
  end)

  it("simplifies through the C API alone, finding the rules beside libluagrad.so", function()
    local out, code = sh("env -u LUA_PATH -u LUA_CPATH " .. q(build .. "/examples/c_api"))
    assert.are.equal(0, code, out)
    assert.matches("expression:\n.*IDIV.*simplified:\n%%0 = DEFINE_VAR int32 %(\"x\", 0, 9%)\n", out)
    assert.matches("result is x: yes", out, 1, true)
  end)

  it("hands out the context with the message when luagrad cannot be loaded", function()
    -- the library and the program without the Lua files: require "luagrad" fails inside lg_open
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute(string.format("mkdir -p %s/bin %s/lib && cp %s %s/bin/ && cp %s %s/lib/", q(dir), q(dir),
      q(build .. "/examples/c_api"), q(dir), q(build .. "/lib/libluagrad.so"), q(dir))))
    local out, code = sh("env LUA_PATH=/nonexistent/?.lua LUA_CPATH=/nonexistent/?.so " .. q(dir .. "/bin/c_api"))
    os.execute("rm -rf " .. q(dir))
    assert.are.equal(1, code)
    assert.matches("c_api: lg_open: require \"luagrad\": module 'luagrad' not found", out, 1, true)
  end)

  it("works from LuaJIT through the FFI, with every rule", function()
    local out, code = sh(string.format("env -u LUA_PATH -u LUA_CPATH luajit %s %s %s",
      q(root .. "/examples/embed/ffi.lua"), q(build .. "/include/luagrad.h"), q(build .. "/lib/libluagrad.so")))
    assert.are.equal(0, code, out)
    assert.matches('%0 = DEFINE_VAR int32 ("x", 0, 9)\nsimplified to x: true', out, 1, true)
  end)
end)
