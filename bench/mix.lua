-- wrk script: a mix of the vendors' calls, in rotation (valid PATCH, 400 PATCH, Capillary update, fabric GET,
-- Returning.AI order list). Each connection walks the same cycle.
local rai = {["Authorization"] = "Bearer XXXXXX", ["Content-Type"] = "application/json"}
local cap = {["Authorization"] = "Basic c3RvcmUuc2VydmVyOjhhMTZhNmI3MDUwNWViMWYxZmY3Y2RjMGNkNTU1OWE3",
             ["Content-Type"] = "application/json"}
local fab = {["Authorization"] = "Bearer fabric-demo-token", ["x-fabric-tenant-id"] = "61a5f0c2b3d4e5f6a7b8c9d0"}
local calls = {
  {"PATCH", "/returning-ai/v1/purchase-histories/ORD202641612055614747", rai,
   '{"redemptionInstructions":"Present this code at checkout.","voucherCode":"ABC-123-XYZ","voucherExpiryDate":"31/12/2027"}'},
  {"PATCH", "/returning-ai/v1/purchase-histories/ORD202641612055614747", rai, '{"voucherCode":"X"}'},
  {"PUT", "/capillary/v2/points/updateRedemption", cap,
   '{"redemptionId":"sTDVyi","billNumber":"idk","entity":{"type":"CUSTOMER","identifierType":"id","identifierValue":"109943742"}}'},
  {"GET", "/fabric/v3/redemptions/614b58924e92f6861ac9d43b", fab, nil},
  {"POST", "/returning-ai/v1/redemption-transactions/by-community", rai,
   '{"page":1,"limit":20}'},
}
local n = 0
request = function()
  n = n + 1
  local call = calls[(n % #calls) + 1]
  return wrk.format(call[1], call[2], call[3], call[4])
end
