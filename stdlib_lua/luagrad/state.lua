-- luagrad.state: weights on disk and state dicts (lg.state).
--   load(path) -> {name = Tensor}, {metadata}: a safetensors file. The tensors view the file
--     through a private mapping (no copy where the data is 64-byte aligned, as in files saved
--     here); the mapping lives while any of them does. Replacing the file with save() is safe.
--   save(tbl, path [, metadata]): tbl maps names to Tensors (realized first); metadata maps
--     strings to strings. The file is the reference layout (HF safetensors reads it).
--   state_dict(model) -> {name = Tensor}: the tensors of a table of layers (luagrad.nn's walk).
--   load_state_dict(model, sd [, {strict = true}]) -> missing, unexpected: each model tensor takes
--     the value of sd's entry of its name (cast to its dtype); all are realized together.
local core = require "luagrad.core"
local Tensor = require "luagrad.tensor"

local M = {}
local is_tensor, shape_str = Tensor.is_tensor, Tensor.shape_str

-- call a core function, an error becoming one at the caller's caller
local function call(level, f, ...)
  local res = table.pack(pcall(f, ...))
  if not res[1] then error(res[2], level + 1) end
  return table.unpack(res, 2, res.n)
end

-- the keys of t: numbers in order, then strings in order, then the rest by their tostring
local RANK = { number = 1, string = 2 }
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ra, rb = RANK[type(a)] or 3, RANK[type(b)] or 3
    if ra ~= rb then return ra < rb end
    if ra == 3 then return tostring(a) < tostring(b) end
    return a < b
  end)
  return keys
end

function M.load(path)
  if type(path) ~= "string" then error(("state.load: path is a %s, expected a string"):format(type(path)), 2) end
  local entries, meta = call(2, core.safetensors_load, path)
  local out = {}
  for _, e in ipairs(entries) do out[e.name] = Tensor.wrap(e.node):reshape(e.shape) end
  return out, meta
end

function M.save(tbl, path, metadata)
  if type(tbl) ~= "table" then error(("state.save: expected a table of tensors, got a %s"):format(type(tbl)), 2) end
  if type(path) ~= "string" then error(("state.save: path is a %s, expected a string"):format(type(path)), 2) end
  if metadata ~= nil and type(metadata) ~= "table" then
    error(("state.save: metadata is a %s, expected a table of strings"):format(type(metadata)), 2)
  end
  for k, v in pairs(metadata or {}) do
    if type(k) ~= "string" or type(v) ~= "string" then
      error(("state.save: metadata %s = %s: keys and values must be strings"):format(tostring(k), tostring(v)), 2)
    end
  end
  local names, list = {}, {}
  for _, name in ipairs(sorted_keys(tbl)) do
    local t = tbl[name]
    if type(name) ~= "string" then error(("state.save: key %s is a %s, expected a string"):format(tostring(name), type(name)), 2) end
    if not is_tensor(t) then error(("state.save: '%s' is a %s, expected a Tensor"):format(name, type(t)), 2) end
    names[#names + 1], list[#list + 1] = name, t
  end
  Tensor.realize_all(list)
  local entries = {}
  for i, t in ipairs(list) do
    local u = t.uop.op == "RESHAPE" and t.uop.src[1] or t.uop -- realized: a BUFFER in row-major order
    entries[i] = { name = names[i], node = u, shape = t.shape }
  end
  call(2, core.safetensors_save, path, entries, metadata)
end

-- the local walk, where luagrad.nn is not installed: keys joined with ".", list positions as their
-- number, keys starting with "_" left out; a table met again on its own path is not walked again
local function walk(x, prefix, out, on_path)
  on_path[x] = true
  for _, k in ipairs(sorted_keys(x)) do
    local v = x[k]
    local ok = math.type(k) == "integer" or type(k) == "string" and k:sub(1, 1) ~= "_"
    if ok and is_tensor(v) then
      out[prefix .. k] = v
    elseif ok and type(v) == "table" and not on_path[v] then
      walk(v, prefix .. k .. ".", out, on_path)
    end
  end
  on_path[x] = nil
  return out
end

function M.state_dict(model)
  if type(model) ~= "table" then error(("state_dict: the model is a %s, expected a table of layers"):format(type(model)), 2) end
  if package.searchpath("luagrad.nn", package.path) then return require("luagrad.nn").state_dict(model) end
  return walk(model, "", {}, {})
end

function M.load_state_dict(model, sd, opts)
  if type(model) ~= "table" then error(("load_state_dict: the model is a %s, expected a table of layers"):format(type(model)), 2) end
  if type(sd) ~= "table" then error(("load_state_dict: the state dict is a %s, expected a table of tensors"):format(type(sd)), 2) end
  local strict = not (opts and opts.strict == false)
  local params = M.state_dict(model)
  local missing, unexpected, misshaped, targets, values = {}, {}, {}, {}, {}
  local missing_txt, unexpected_txt = {}, {}
  for _, name in ipairs(sorted_keys(params)) do
    local t, v = params[name], sd[name]
    if v == nil then
      missing[#missing + 1], missing_txt[#missing + 1] = name, name .. " " .. shape_str(t.shape)
    elseif not is_tensor(v) then
      error(("load_state_dict: '%s' in the state dict is a %s, expected a Tensor"):format(name, type(v)), 2)
    elseif shape_str(v.shape) ~= shape_str(t.shape) then
      misshaped[#misshaped + 1] = ("%s: model %s, state dict %s"):format(name, shape_str(t.shape), shape_str(v.shape))
    else
      targets[#targets + 1], values[#values + 1] = t, v
    end
  end
  for _, name in ipairs(sorted_keys(sd)) do
    if params[name] == nil then
      local v = sd[name]
      unexpected[#unexpected + 1] = name
      unexpected_txt[#unexpected] = tostring(name) .. (is_tensor(v) and " " .. shape_str(v.shape) or "")
    end
  end
  if #misshaped > 0 or strict and (#missing > 0 or #unexpected > 0) then
    local parts = {}
    if #misshaped > 0 then parts[#parts + 1] = #misshaped .. " mis-shaped: " .. table.concat(misshaped, "; ") end
    if strict and #missing > 0 then parts[#parts + 1] = #missing .. " missing: " .. table.concat(missing_txt, ", ") end
    if strict and #unexpected > 0 then parts[#parts + 1] = #unexpected .. " unexpected: " .. table.concat(unexpected_txt, ", ") end
    error("load_state_dict: " .. table.concat(parts, "; "), 2)
  end
  for i, t in ipairs(targets) do t:assign(values[i]) end
  Tensor.realize_all(targets)
  return missing, unexpected
end

return M
