-- compile.lua - weft's `compile` workload for Lua 5.4 / LuaJIT: the same
-- generated program as weft-bench compile (functions of ten lines: locals,
-- a counted loop, an if, a branch on the arguments, a call, a table),
-- written in Lua, compiled by load() and timed (not run).
-- Usage: lua5.4 compile.lua compile [lines]
local lines = tonumber(arg[2]) or 200000
local nfn = math.floor(lines / 10)
local parts = {}
for i = 0, nfn - 1 do
  parts[#parts + 1] = string.format([[
function f%d(a, b)
  local x = a * %d + b
  local acc = {}
  for k = 0, x - 1 do acc[#acc + 1] = k * 2 end
  if x > 10 then acc[#acc + 1] = x else acc = {} end
  if a == 0 then
    return #acc
  elseif a > b then return a - b + f%d(b, a)
  else return ({k = x, v = acc}).v end
end
]], i, i, i > 0 and i - 1 or 0)
end
local src = table.concat(parts)
local t0 = os.clock()
local f, err = load(src, "generated")
local secs = os.clock() - t0
if not f then io.stderr:write("FAIL: ", err, "\n") os.exit(1) end
local n = nfn * 10
io.write(string.format("name=compile n=%d ns_per_op=%.1f ops=%d wall_s=%.6f lines_per_s=%.0f bytes=%d\n",
  n, secs * 1e9 / n, n, secs, n / secs, #src))
