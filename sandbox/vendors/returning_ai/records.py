"""Returning.AI's collections, as plain dict records.

- rai_communities         {_id, name}
- rai_users               {_id, communityID, name, email, coins}
- rai_products            {_id, communityID, name, redemptionInstructions}
- rai_vouchers            {_id, communityID, productID, code, status, expiryDate}
- rai_purchase_histories  {_id, purchaseID, communityID, userID, product{_id, name, redemptionInstructions},
                           voucherID, voucherCode, voucherExpiryDate, voucher{_id, code, status, expiryDate},
                           createdAt, updatedAt}
- rai_redemption_statuses {_id, communityID, name, category, color, createdAt}
- rai_redemption_transactions {_id, transactionId, communityID, userID, product{_id, name}, coins, statusId,
                           coinsRefunded, createdAt, updatedAt}  (an order; shares _id and ID with its purchase history)
- rai_status_history      {_id, transactionId, communityID, fromStatusId, toStatusId, changedAt, changedBy,
                           refundCoins, coinsRefunded}
- rai_api_keys            {key, communityID, permissions[], expiresAt, active, purpose}
"""
COMMUNITIES = "rai_communities"
USERS = "rai_users"
PRODUCTS = "rai_products"
VOUCHERS = "rai_vouchers"
PURCHASE_HISTORIES = "rai_purchase_histories"
STATUSES = "rai_redemption_statuses"
TRANSACTIONS = "rai_redemption_transactions"
STATUS_HISTORY = "rai_status_history"
API_KEYS = "rai_api_keys"

INDEXES = {
    PURCHASE_HISTORIES: ["purchaseID"],
    VOUCHERS: ["productID"],
    USERS: ["email"],
    STATUSES: ["communityID"],
    TRANSACTIONS: ["transactionId", "communityID", "userID"],
    STATUS_HISTORY: ["transactionId"],
}
