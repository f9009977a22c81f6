"""Demo scenarios (scenarios/*.yaml, sandbox/control/scenarios.py): each one's story is numbered steps that a trainer
clicks through on the demo page (issue 31 point 3). Each step's request, sent in order on a world that loaded the
scenario, gets the status the step says: the story is true as written."""
import json

import pytest
import yaml

from helpers import strict_app
from sandbox import Settings, create_app
from sandbox.control.scenarios import ScenarioRefused
from sandbox.config import ROOT

NAMES = sorted(path.stem for path in (ROOT / "scenarios").glob("*.yaml"))
BASE = {"returning-ai": "/returning-ai/v1", "fabric": "/fabric/v3", "capillary": "/capillary", "sandbox": "/_sandbox"}


def send(client, credentials, request):
    """A step's request as the demo page sends it: the vendor's first demo credential (or the named one)."""
    headers = {}
    if request["vendor"] != "sandbox":
        mine = [c for c in credentials if c["vendor"] == request["vendor"]]
        chosen = next(c for c in mine if request.get("credential") in (None, c["name"]))
        headers = dict(chosen["headers"])
    body = request.get("body")
    return client.open(BASE[request["vendor"]] + request["path"], method=request["method"], headers=headers,
                       data=None if body is None else json.dumps(body),
                       content_type=None if body is None else "application/json")


@pytest.mark.parametrize("name", NAMES)
def test_each_step_of_a_scenario_gets_the_status_its_story_says(name):
    client = strict_app(size=10).test_client()
    assert client.post(f"/_sandbox/scenarios/{name}").status_code == 200
    credentials = client.get("/_sandbox/credentials").get_json()["credentials"]
    [listed] = [s for s in client.get("/_sandbox/scenarios").get_json()["scenarios"] if s["name"] == name]
    assert listed["steps"], "every scenario tells its story in steps"
    for number, step in enumerate(listed["steps"], 1):
        if "request" not in step:
            continue
        for _ in range(step.get("repeat", 1)):
            answer = send(client, credentials, step["request"])
        if "expect" in step:
            assert (number, answer.status_code) == (number, step["expect"]), answer.get_data(as_text=True)[:300]


def test_the_stories_show_what_they_say():
    """Beyond the statuses: the steps of three scenarios change what their story says they change."""
    client = strict_app(size=10).test_client()
    credentials = client.get("/_sandbox/credentials").get_json()["credentials"]

    def run(name):
        client.post(f"/_sandbox/scenarios/{name}")
        steps = [s for s in client.get("/_sandbox/scenarios").get_json()["scenarios"] if s["name"] == name][0]["steps"]
        return [send(client, credentials, s["request"]) for s in steps for _ in range(s.get("repeat", 1))]

    answers = run("fulfilment-refund")
    assert [answers[n].get_json()["data"]["user"]["coins"] for n in (0, 2)] == [1200, 1700]
    answers = run("fabric-order-cancel")
    assert answers[0].get_json()["data"][0]["status"] == "ACTIVE" and answers[2].get_json()["data"][0]["status"] == "INACTIVE"
    answers = run("rate-limited")
    assert [a.status_code for a in answers] == [200] * 5 + [429, 200, 200] and "Retry-After" in answers[5].headers


@pytest.mark.parametrize("steps, says", [
    (None, "scenarios/broken.yaml needs steps"),
    ([{"say": "x", "request": {"vendor": "fabric", "method": "GET", "path": "/nowhere"}}],
     "scenarios/broken.yaml, step 1: GET /nowhere is no operation of fabric's spec"),
    ([{"say": "x", "request": {"vendor": "acme", "method": "GET", "path": "/x"}}], "scenarios/broken.yaml, step 1: "),
    ([{"say": "x", "colour": "red"}], "scenarios/broken.yaml, step 1: Unknown field(s) colour"),
])
def test_a_scenario_whose_steps_are_wrong_stops_the_start_saying_which(steps, says, tmp_path):
    scenario = {"title": "Broken", "story": "A story."} | ({"steps": steps} if steps is not None else {})
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(scenario), encoding="utf-8")
    with pytest.raises(ScenarioRefused) as refused:
        create_app(Settings(backend="memory", size=1, scenarios_dir=tmp_path))
    assert str(refused.value).startswith(says), str(refused.value)


def test_a_scenario_file_that_is_not_yaml_stops_the_start(tmp_path):
    (tmp_path / "broken.yaml").write_text("title: [\n", encoding="utf-8")
    with pytest.raises(ScenarioRefused, match="scenarios/broken.yaml is not valid YAML"):
        create_app(Settings(backend="memory", size=1, scenarios_dir=tmp_path))
