"""`run.py proxy`: forward to a real server, record whether each exchange conforms (issue 7)."""
import pytest
from flask import Flask, jsonify

from helpers import FABRIC, served, strict_app


@pytest.fixture
def upstreams():
    broken = Flask("broken")

    @broken.route("/<path:anything>", methods=["GET", "PUT"])
    def anything(anything):
        return jsonify(oops=True)

    with served(strict_app(size=10)) as real, served(broken) as broken_port:
        yield f"http://127.0.0.1:{real}/fabric/v3", f"http://127.0.0.1:{broken_port}/fabric/v3"


def proxy_client(upstream):
    return strict_app(size=5, proxies={"fabric": upstream}).test_client()


def test_proxy_in_front_of_the_sandbox_forwards_and_finds_it_conforms(upstreams):
    client = proxy_client(upstreams[0])
    r = client.get("/proxy/fabric/redemptions/614b58924e92f6861ac9d43b", headers=FABRIC)
    assert r.status_code == 200 and r.get_json()["couponCode"] == "BESTSUMMER"
    [finding] = client.get("/_sandbox/proxy/findings").get_json()["findings"]
    assert finding["conforms"] is True and finding["operation"] == "getRedemption" and finding["problems"] == []


def test_proxy_in_front_of_a_broken_upstream_records_what_fails_where(upstreams):
    client = proxy_client(upstreams[1])
    r = client.get("/proxy/fabric/redemptions/614b58924e92f6861ac9d43b", headers=FABRIC)
    assert r.status_code == 200 and r.get_json() == {"oops": True}  # relayed unchanged
    client.get("/proxy/fabric/redemptions?size=0", headers={"Authorization": "Bearer x"})  # a bad request, too
    findings = client.get("/_sandbox/proxy/findings?spec=fabric").get_json()["findings"]
    assert [f["conforms"] for f in findings] == [False, False]
    assert any("'id' is a required property" in p for p in findings[0]["problems"])
    assert any(p.startswith("request header x-fabric-tenant-id") for p in findings[1]["problems"])
    assert any(p.startswith("request query size") for p in findings[1]["problems"])
    # The same exchanges are in the journal, under vendor proxy:fabric.
    journal = client.get("/_sandbox/requests?vendor=proxy:fabric").get_json()["requests"]
    assert [e["rule"] for e in journal] == ["violations", "violations"] and journal[0]["findings"]


def test_unknown_operation_and_unreachable_upstream(upstreams):
    client = strict_app(size=5, proxies={"fabric": "http://127.0.0.1:9/nowhere"}).test_client()
    r = client.get("/proxy/fabric/redemptions", headers=FABRIC)
    assert r.status_code == 502 and r.get_json()["error"]["message"].startswith("Upstream unreachable: ")
    r = client.get("/proxy/fabric/not-an-operation", headers=FABRIC)
    findings = client.get("/_sandbox/proxy/findings").get_json()["findings"]
    assert "is not an operation of fabric" in findings[-1]["problems"][0]
    r = client.get("/proxy/capillary/v2/x")  # issue 26: every answer of the sandbox's own is JSON
    assert r.status_code == 404 and r.get_json()["error"]["message"].startswith("No proxy for capillary; start with")
