"""Deterministic Faker data: same seed, same data; --size scales it; the documents' records always exist."""
from helpers import strict_app
from sandbox.core import fakes


def world(seed, size):
    store = strict_app(seed=seed, size=size).extensions["sandbox"].store
    return {c: store.all(c) for c in ("rai_communities", "rai_users", "rai_products", "rai_vouchers",
                                      "rai_purchase_histories", "rai_api_keys")}


def test_same_seed_gives_same_data():
    assert world(11, 60) == world(11, 60)


def test_word_pools_remembered_from_an_earlier_world_give_exactly_the_data_a_fresh_draw_gives():
    """core/fakes.py: a world seeded again takes its Faker pools from the process's memory of earlier draws."""
    fakes._drawn.clear()
    fresh = world(11, 60)
    assert fakes._drawn, "the draws were remembered"
    assert world(11, 60) == fresh
    fakes._drawn.clear()
    assert world(11, 60) == fresh


def test_the_remembered_word_pools_are_bounded():
    fakes._drawn.clear()
    for seed in range(15):  # each world draws over ten pools
        world(seed, 2)
    assert len(fakes._drawn) == fakes.POOLS_KEPT


def test_another_seed_gives_other_data():
    assert world(11, 60)["rai_purchase_histories"] != world(12, 60)["rai_purchase_histories"]


def test_size_scales_the_generated_records():
    assert len(world(11, 200)["rai_purchase_histories"]) - len(world(11, 20)["rai_purchase_histories"]) == 180


def test_documents_records_exist_exactly_as_printed_whatever_the_seed():
    for seed in (1, 99):
        data = world(seed, 10)
        doc = next(o for o in data["rai_purchase_histories"] if o["_id"] == "507f1f77bcf86cd799439012")
        assert doc["purchaseID"] == "ORD202641612055614747"
        assert doc["communityID"] == "507f1f77bcf86cd799439013"
        assert doc["product"]["_id"] == "507f1f77bcf86cd799439015" and doc["product"]["name"] == "Gold Voucher"
        assert doc["voucher"]["_id"] == "507f1f77bcf86cd799439016"


def test_generated_orders_reference_existing_records_of_their_community():
    data = world(5, 80)
    vouchers = {v["_id"]: v for v in data["rai_vouchers"]}
    users = {u["_id"]: u for u in data["rai_users"]}
    for order in data["rai_purchase_histories"][5:]:
        assert vouchers[order["voucherID"]]["communityID"] == order["communityID"]
        assert order["voucherCode"] == vouchers[order["voucherID"]]["code"]
        assert order["userID"] in users
