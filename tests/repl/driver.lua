-- Drives build/bin/luagrad for the repl specs: through a pipe (run) and through a
-- pseudo-terminal made by `script` (on_terminal; Debian's essential bsdutils package has it).
local M = {}

local build = os.getenv("LG_BUILD") or "build"
M.exe = build .. "/bin/luagrad"
M.root = os.getenv("LG_ROOT") or "."

-- a string quoted for sh
function M.q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local q = M.q

function M.write_file(text)
  local name = os.tmpname()
  local f = assert(io.open(name, "w"))
  f:write(text)
  f:close()
  return name
end

function M.read_file(name)
  local f = io.open(name)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Run `luagrad args` with `input` on stdin (a pipe's worth: a file), without LUA_INIT unless
-- `env` sets it (`env` is put before the command as env(1) takes it). Returns stdout, stderr and
-- the exit code.
function M.run(args, input, env)
  local inf, errf = M.write_file(input or ""), os.tmpname()
  local cmd = string.format("env -u LUA_INIT -u LUA_INIT_5_4 %s %s %s <%s 2>%s", env or "", q(M.exe),
    args or "", inf, errf)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local _, _, code = p:close()
  local err = M.read_file(errf)
  os.remove(inf)
  os.remove(errf)
  return out, err, code
end

-- Feed `steps` ({text, pause in seconds (0.3)}) to luagrad on a pseudo-terminal with HOME set
-- to `home`; returns what the terminal showed, without carriage returns and bracketed-paste
-- switches.
function M.on_terminal(steps, home)
  local feed = {}
  for _, s in ipairs(steps) do
    feed[#feed + 1] = string.format("printf %s; sleep %s", q(s[1]:gsub("%%", "%%%%")), s[2] or 0.3)
  end
  local cmd = string.format("(sleep 0.5; %s) | env -u LUA_INIT HOME=%s timeout 20 script -qfec %s /dev/null 2>&1",
    table.concat(feed, "; "), q(home), q(M.exe))
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return (out:gsub("\r", ""):gsub("\27%[%?2004[hl]", ""))
end

-- a fresh directory for HOME, and its removal
function M.tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. q(dir)))
  return dir
end

function M.rmdir(dir) os.execute("rm -rf " .. q(dir)) end

return M
