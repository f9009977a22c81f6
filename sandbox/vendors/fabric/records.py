"""fabric's collections, as plain dict records.

- fab_tenants      {id, name}
- fab_tokens       {token, tenantId, purpose}
- fab_promotions   {id, tenantId, name, additionalAttributes[{name, values}]}
- fab_coupons      {id, tenantId, promotionId, code, singleUse}
- fab_redemptions  {id, tenantId, channelId, promotionId, orderId, couponCode, couponId, userId, email, storeId,
                    redeemedAt, status, additionalAttributes, createdAt, updatedAt}
"""
TENANTS = "fab_tenants"
TOKENS = "fab_tokens"
PROMOTIONS = "fab_promotions"
COUPONS = "fab_coupons"
REDEMPTIONS = "fab_redemptions"

INDEXES = {REDEMPTIONS: ["tenantId", "couponCode"], COUPONS: ["code"]}
