"""HTTP handlers, one per operationId of specs/returning-ai.yaml. They translate; the backend decides."""
from sandbox.core.faults import requested_fault

from .models import PurchaseHistoryChanges, ReturningAIBackend, purchase_history_json


def _backend(call) -> ReturningAIBackend:
    return ReturningAIBackend(call.store, call.settings)


def update_purchase_history(call):
    order = _backend(call).update_purchase_history(
        call.principal.community_id,
        call.params["purchaseHistoryID"],
        PurchaseHistoryChanges.from_body(call.body),
        requested_fault(call.params),
    )
    return {
        "meta": {"status": "success", "statusCode": 200},
        "message": "Update purchase history success.",
        "data": purchase_history_json(order),
    }
