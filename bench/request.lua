-- wrk script: METHOD, PATH_, BODY and HEADERS come from the environment (bench/run.sh sets them).
wrk.method = os.getenv("METHOD")
wrk.path = os.getenv("PATH_")
local body = os.getenv("BODY")
if body and body ~= "" then wrk.body = body end
for header in string.gmatch(os.getenv("HEADERS") or "", "[^|]+") do
  local name, value = header:match("^([^:]+):%s*(.*)$")
  wrk.headers[name] = value
end
