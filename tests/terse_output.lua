-- Busted output handler for tests/run.sh: nothing per passing test; each failure or error with
-- its place, name and message; then one summary line "N passed, N failed, N pending (T s)" that
-- run.sh reads (failed counts busted's failures and errors).
return function(options)
  local busted = require "busted"
  local pretty = require "pl.pretty"
  local handler = require "busted.outputHandlers.base"()

  local function describe(kind, f)
    local msg = f.message
    if type(msg) ~= "string" then msg = msg == nil and "nil error" or pretty.write(msg) end
    local trace = f.element.trace
    local where = trace and trace.short_src and (trace.short_src .. ":" .. trace.currentline) or "?"
    local out = string.format("%s %s: %s\n  %s\n", kind, where, f.name or "", msg:gsub("\n", "\n  "))
    if options.verbose and f.trace and f.trace.traceback then out = out .. f.trace.traceback .. "\n" end
    return out
  end

  handler.suiteEnd = function()
    for _, f in ipairs(handler.failures) do io.write(describe("FAIL", f)) end
    for _, f in ipairs(handler.errors) do io.write(describe("ERROR", f)) end
    io.write(string.format("%d passed, %d failed, %d pending (%.2f s)\n", handler.successesCount,
      handler.failuresCount + handler.errorsCount, handler.pendingsCount, handler.getDuration()))
    io.flush()
    return nil, true
  end

  busted.subscribe({ "suite", "end" }, handler.suiteEnd)
  return handler
end
