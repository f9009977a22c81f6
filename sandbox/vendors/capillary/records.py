"""Capillary's collections, as plain dict records (keys are strings; Capillary's numeric IDs stay numbers inside).

- cap_orgs          {orgId, name, programId, customFields[] (names configured for custom fields)}
- cap_tills         {username, tillId, tillName, orgId, passwordMd5, plainPassword, purpose}
- cap_oauth_clients {key, secret, username (the till it acts as), purpose}
- cap_oauth_tokens  {token, username, expiresAt (epoch seconds)}
- cap_customers     {customerId, orgId, firstname, lastname, mobile, email, externalId, cardnumber, points}
- cap_redemptions   {redemptionId, id, orgId, customerId, programId, pointsRedeemed, pointsReversed, billId,
                     billNumber, validationCode, notes, redemptionTime, pointsRedemptionTime, tillId, tillName,
                     pointDeductionList, redemptionPurpose, redemptionDate, externalReferenceNumber, customFields{}}
- cap_reversals     {reversalId, redemptionId, orgId, points, at}
"""
ORGS = "cap_orgs"
TILLS = "cap_tills"
OAUTH_CLIENTS = "cap_oauth_clients"
OAUTH_TOKENS = "cap_oauth_tokens"
CUSTOMERS = "cap_customers"
REDEMPTIONS = "cap_redemptions"
REVERSALS = "cap_reversals"

INDEXES = {
    CUSTOMERS: ["mobile", "email", "externalId", "cardnumber"],
    REDEMPTIONS: ["externalReferenceNumber", "customerId"],
}
