-- luagrad.rules: rule files on a search path, named passes, and graph_rewrite.
--
-- A rule file `<name>.lua` returns a list of rules ({pattern, result [, name = ]}, see
-- luagrad.pattern). The search path is the directories given to rules.path(dirs), then
-- LUAGRAD_RULES_PATH (colon-separated), then the installed rules next to this module. A pass
-- named X is the rule file X unless rules.define(X, files) says otherwise; rules.add puts extra
-- rules into a pass. Passes are compiled once and cached; add, define, path and reload drop the
-- cache, so the next graph_rewrite uses the new rules without a rebuild or restart.
local core = require "luagrad.core"

local M = { graph_rewrite = core.graph_rewrite, compile = core.compile }

local here = debug.getinfo(1, "S").source
local installed = (here:sub(1, 1) == "@" and here:sub(2):match("^(.*)/") or ".") .. "/rules"

local user_dirs = {} -- rules.path(dirs)
local defs = {}      -- pass -> list of file names
local extra = {}     -- pass -> {first = {...}, last = {...}}
local cache = {}     -- pass -> RuleSet
local uses = {}      -- pass -> set of the files it was built from

-- rules.path([dirs]) -> the directories searched, in order; with dirs, sets the user's part.
function M.path(dirs)
  if dirs ~= nil then
    assert(type(dirs) == "table", "rules.path: expected a list of directories")
    user_dirs = { table.unpack(dirs) }
    cache = {}
  end
  local out = { table.unpack(user_dirs) }
  for dir in (os.getenv("LUAGRAD_RULES_PATH") or ""):gmatch("[^:]+") do out[#out + 1] = dir end
  out[#out + 1] = installed
  return out
end

-- rules.load(name) -> the list of rules in <name>.lua, read afresh from the path
function M.load(name)
  assert(type(name) == "string", "rules.load: expected a rule file name")
  local dirs = M.path()
  for _, dir in ipairs(dirs) do
    local file = dir .. "/" .. name .. ".lua"
    local f = io.open(file, "r")
    if f then
      f:close()
      local chunk, err = loadfile(file, "t")
      if not chunk then error("rules.load: " .. err, 2) end
      local list = chunk(name)
      if type(list) ~= "table" then
        error(("rules.load: %s returned a %s, expected a list of rules"):format(file, type(list)), 2)
      end
      return list
    end
  end
  error(("rules.load: no rule file %s.lua in %s"):format(name, table.concat(dirs, ":")), 2)
end

local function build(name)
  local files, list, used = defs[name] or { name }, {}, {}
  local ex = extra[name] or { first = {}, last = {} }
  for _, r in ipairs(ex.first) do list[#list + 1] = r end
  for _, file in ipairs(files) do
    used[file] = true
    for _, r in ipairs(M.load(file)) do list[#list + 1] = r end
  end
  for _, r in ipairs(ex.last) do list[#list + 1] = r end
  local rs = core.compile(list, name)
  uses[name] = used
  return rs
end

-- rules.pass(name) -> the compiled RuleSet of a pass (cached)
function M.pass(name)
  assert(type(name) == "string", "rules.pass: expected a pass name")
  local rs = cache[name]
  if not rs then
    rs = build(name)
    cache[name] = rs
  end
  return rs
end

-- rules.define(name, {file, ...}): a pass made of several rule files, in order
function M.define(name, files)
  assert(type(name) == "string" and type(files) == "table", "rules.define: expected a name and a list of files")
  for i, file in ipairs(files) do
    assert(type(file) == "string", ("rules.define: file %d is a %s"):format(i, type(file)))
  end
  defs[name] = { table.unpack(files) }
  cache[name] = nil
end

-- rules.add(pass, rule [, {first = true}]): one more rule for a pass, after its files' rules
-- (before them, and before rules added earlier, with first = true). The rule is checked now.
function M.add(pass, rule, opts)
  core.compile({ rule }, pass)
  local ex = extra[pass] or { first = {}, last = {} }
  extra[pass] = ex
  if opts and opts.first then table.insert(ex.first, 1, rule) else ex.last[#ex.last + 1] = rule end
  cache[pass] = nil
end

-- rules.reload([name]): re-read the rule files of the cached passes named name or built from
-- the file name (all cached passes without a name), now, so errors show here.
function M.reload(name)
  local stale = {}
  for pass in pairs(cache) do
    if name == nil or pass == name or uses[pass][name] then stale[#stale + 1] = pass end
  end
  for _, pass in ipairs(stale) do cache[pass] = nil end
  table.sort(stale)
  for _, pass in ipairs(stale) do M.pass(pass) end
end

return M
