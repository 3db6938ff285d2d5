"""Operator review through the API: part fields on an inspection, decisions (who and when,
401/403, Origin), filters, CSV export and pass rate per day and shift; the label rule."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from scratchdet.service.db import InspectionRow
from scratchdet.service.passrate import parse_shifts, pass_rates, shift_of
from scratchdet.service.review import review_of
from scratchdet.service.tables import DecisionRow
from service.helpers import BOTH_DATABASES, MakeClient, photo_bytes, wait_ready

PHOTO = {"photo": ("white_part.jpg", photo_bytes(), "image/jpeg")}
PART = {"serial": "SN-0042", "lot": "L7", "station": "line-3", "operator": "Ana"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def operator(make_client: MakeClient) -> TestClient:
    client = make_client(role="operator")
    wait_ready(client)
    return client


def inspect(client: TestClient, **fields: str) -> dict:
    response = client.post("/v1/inspect", files=PHOTO, data=fields)
    assert response.status_code == 200, response.text
    return response.json()


@BOTH_DATABASES
def test_part_fields_region_and_scores_below_the_threshold(operator: TestClient) -> None:
    body = inspect(operator, **{**PART, "serial": "  SN-0042 "})
    assert {k: body[k] for k in PART} == PART
    assert body["part_box"] == [0.0, 0.0, 480.0, 320.0]  # the tiny model sees the whole photo
    assert body["review"] == "unreviewed" and body["decisions"] == []
    assert len(body["below_boxes"]) == len(body["below_scores"])
    assert all(s < body["threshold"] for s in body["below_scores"])
    stored = operator.get(f"/v1/inspections/{body['id']}").json()
    assert stored == body
    inspect(operator, serial="SN-0043", station="line-4")
    for params, count in [({"serial": "SN-0042"}, 1), ({"station": "line-4"}, 1),
                          ({"lot": "L7", "operator": "Ana"}, 1), ({"serial": "nope"}, 0),
                          ({"serial": ""}, 2)]:
        page = operator.get("/v1/inspections", params=params).json()
        assert page["total"] == count, params


def test_part_fields_are_checked(operator: TestClient) -> None:
    for fields, words in [({"serial": "x" * 129}, "serial is 129 characters long"),
                          ({"station": "a\x07b"}, "control characters")]:
        response = operator.post("/v1/inspect", files=PHOTO, data=fields)
        assert (response.status_code, response.json()["error"]) == (422, "bad_field")
        assert words in response.json()["detail"]
    assert operator.get("/v1/inspections").json()["total"] == 0


@BOTH_DATABASES
def test_decisions_are_stored_with_who_and_when(
    operator: TestClient, api_keys: dict[str, str]
) -> None:
    body = inspect(operator, **PART)
    url = f"/v1/inspections/{body['id']}/decisions"
    before = datetime.now(UTC)
    confirmed = operator.post(url, json={"decision": "confirm"})
    assert confirmed.status_code == 201, confirmed.text
    first = confirmed.json()
    assert (first["decision"], first["boxes"], first["decided_by"]) == (
        "confirm", body["boxes"], "test-operator")
    assert before - timedelta(seconds=1) <= datetime.fromisoformat(first["decided_at"])
    drawn = operator.post(url, json={"decision": "missed", "boxes": [[10, 20, 60, 90.5]],
                                     "note": " near the edge "},
                          headers=bearer(api_keys["admin"]))
    assert drawn.status_code == 201, drawn.text
    assert (drawn.json()["decided_by"], drawn.json()["note"]) == ("test-admin", "near the edge")
    listed = operator.get(url).json()
    assert [d["decision"] for d in listed] == ["confirm", "missed"]
    again = operator.get(f"/v1/inspections/{body['id']}").json()
    assert [d["id"] for d in again["decisions"]] == [d["id"] for d in listed]
    assert again["review"] == "scratched"  # confirmed boxes (if any) + the drawn one
    assert operator.post(url, json={"decision": "false_alarm"}).status_code == 201
    assert operator.get(f"/v1/inspections/{body['id']}").json()["review"] == "scratched"


def test_bad_decisions_are_422_or_404(operator: TestClient) -> None:
    body = inspect(operator)
    url = f"/v1/inspections/{body['id']}/decisions"
    for payload, code, words in [
        ({"decision": "missed"}, "bad_decision", "needs the boxes drawn"),
        ({"decision": "false_alarm", "boxes": [[1, 1, 5, 5]]}, "bad_decision", "names no box"),
        ({"decision": "missed", "boxes": [[10, 10, 5, 20]]}, "bad_box", "boxes[0]: box"),
        ({"decision": "missed", "boxes": [[0, 0, 481, 20]]}, "bad_box", "x2 <= 480"),
        ({"decision": "maybe"}, "invalid_input", "decision"),
        ({"decision": "confirm", "who": "me"}, "invalid_input", "who"),
    ]:
        response = operator.post(url, json=payload)
        assert (response.status_code, response.json()["error"]) == (422, code), payload
        assert words in response.json()["detail"], payload
    missing = operator.post("/v1/inspections/nope/decisions", json={"decision": "confirm"})
    assert missing.status_code == 404
    assert operator.get(url).json() == []


@BOTH_DATABASES
def test_decision_routes_need_a_key_and_a_role(
    make_client: MakeClient, api_keys: dict[str, str]
) -> None:
    anon = make_client(role=None)
    wait_ready(anon)
    inspection = anon.post("/v1/inspect", files=PHOTO, headers=bearer(api_keys["operator"]))
    url = f"/v1/inspections/{inspection.json()['id']}/decisions"
    decision = {"decision": "false_alarm"}
    assert anon.post(url, json=decision).status_code == 401
    assert anon.post(url, json=decision, headers=bearer("sdk_wrong")).status_code == 401
    refused = anon.post(url, json=decision, headers=bearer(api_keys["viewer"]))
    assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
    assert "needs role operator or higher" in refused.json()["detail"]
    cross = anon.post(url, json=decision, headers={**bearer(api_keys["admin"]),
                                                    "Origin": "https://evil.example"})
    assert (cross.status_code, cross.json()["error"]) == (403, "cross_origin")
    foreign = anon.post(url, json=decision, headers={**bearer(api_keys["admin"]),
                                                      "Host": "evil.example"})
    assert foreign.status_code == 400
    for path in (url, "/v1/inspections.csv", "/v1/pass-rate"):
        assert anon.get(path).status_code == 401, path
        assert anon.get(path, headers=bearer(api_keys["viewer"])).status_code == 200, path
    assert anon.get(url, headers=bearer(api_keys["viewer"])).json() == []
    own = anon.post(url, json=decision, headers={**bearer(api_keys["operator"]),
                                                 "Origin": "http://testserver"})
    assert own.status_code == 201


def add_rows(client: TestClient, times: list[datetime]) -> list[str]:
    """One row per time; even ones fail with a box, odd ones pass."""
    history = client.app.state.service.history
    for i, moment in enumerate(times):
        fails = i % 2 == 0
        history.add(InspectionRow(
            id=f"r{i:02d}", created_at=moment, filename=f"=cmd{i}.jpg" if i == 0 else "p.jpg",
            photo_path="/none", width=100, height=100, threshold=0.5,
            verdict="fail" if fails else "pass", num_boxes=int(fails),
            boxes=[[1.0, 1.0, 9.0, 9.0]] if fails else [], scores=[0.9] if fails else [],
            timings={"total_ms": 12.0}, model_id="m", serial=f"S{i}", station="line-1"))
    return [f"r{i:02d}" for i in range(len(times))]


@BOTH_DATABASES
def test_decision_filter_and_csv(client: TestClient) -> None:
    start = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
    ids = add_rows(client, [start + timedelta(hours=h) for h in range(4)])
    post = client.post
    assert post(f"/v1/inspections/{ids[0]}/decisions", json={"decision": "confirm"}).is_success
    assert post(f"/v1/inspections/{ids[2]}/decisions",
                json={"decision": "false_alarm"}).is_success
    assert post(f"/v1/inspections/{ids[1]}/decisions",
                json={"decision": "missed", "boxes": [[5, 5, 20, 20]]}).is_success
    for decision, expected in [("confirm", [ids[0]]), ("false_alarm", [ids[2]]),
                               ("missed", [ids[1]]), ("any", [ids[2], ids[1], ids[0]]),
                               ("none", [ids[3]])]:
        page = client.get("/v1/inspections", params={"decision": decision}).json()
        assert [i["id"] for i in page["items"]] == expected, decision
    assert client.get("/v1/inspections", params={"decision": "bogus"}).status_code == 422

    response = client.get("/v1/inspections.csv", params={"verdict": "fail", "tz": "UTC"})
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["id"] for r in rows] == [ids[2], ids[0]]
    assert (rows[0]["review"], rows[0]["decision"], rows[0]["decided_by"]) == (
        "clean", "false_alarm", "test-admin")
    assert rows[1]["filename"] == "'=cmd0.jpg"  # no formula in a spreadsheet
    assert rows[1]["local_time"] == "2026-11-27T05:00:00+00:00"
    assert (rows[1]["serial"], rows[1]["max_score"], rows[1]["review"]) == ("S0", "0.9",
                                                                            "scratched")
    bad_zone = client.get("/v1/inspections.csv", params={"tz": "Mars/Base"})
    assert (bad_zone.status_code, bad_zone.json()["error"]) == (422, "bad_time_zone")


@BOTH_DATABASES
def test_pass_rate_per_day_and_shift(client: TestClient) -> None:
    # Berlin is UTC+1 in November: 04:30 UTC = 05:30 local (the night shift of the 26th).
    start = datetime(2026, 11, 27, 4, 30, tzinfo=UTC)
    add_rows(client, [start + timedelta(hours=h) for h in (0, 1, 9, 20)])
    report = client.get("/v1/pass-rate", params={"tz": "Europe/Berlin"}).json()
    assert (report["timezone"], report["shifts"]) == ("Europe/Berlin", ["06-14", "14-22",
                                                                        "22-06"])
    assert (report["total"], report["passed"], report["pass_rate"]) == (4, 2, 0.5)
    assert report["days"] == [{"day": "2026-11-27", "shift": None, "total": 3, "passed": 1,
                               "pass_rate": 1 / 3},
                              {"day": "2026-11-28", "shift": None, "total": 1, "passed": 1,
                               "pass_rate": 1.0}]
    assert [(r["day"], r["shift"], r["total"], r["passed"]) for r in report["by_shift"]] == [
        ("2026-11-26", "22-06", 1, 0), ("2026-11-27", "06-14", 1, 1),
        ("2026-11-27", "14-22", 1, 0), ("2026-11-27", "22-06", 1, 1)]
    only = client.get("/v1/pass-rate", params={"tz": "UTC", "station": "none"}).json()
    assert (only["total"], only["pass_rate"], only["days"]) == (0, None, [])


def test_shifts_setting(make_client: MakeClient) -> None:
    client = make_client(shift_starts=(7, 19))
    wait_ready(client)
    add_rows(client, [datetime(2026, 11, 27, 6, 0, tzinfo=UTC)])
    report = client.get("/v1/pass-rate", params={"tz": "UTC"}).json()
    assert report["shifts"] == ["07-19", "19-07"]
    assert report["by_shift"][0]["day"] == "2026-11-26"


def test_shift_maths() -> None:
    starts = parse_shifts("6,14,22")
    assert shift_of(datetime(2026, 1, 2, 5, 59), starts) == (date(2026, 1, 1), "22-06")
    assert shift_of(datetime(2026, 1, 2, 6, 0), starts) == (date(2026, 1, 2), "06-14")
    assert shift_of(datetime(2026, 1, 2, 23, 0), starts) == (date(2026, 1, 2), "22-06")
    assert parse_shifts("0") == (0,)
    for bad in ("", "14,6", "6,6", "24", "x"):
        with pytest.raises(ValueError, match="shift"):
            parse_shifts(bad)
    plus2 = timezone(timedelta(hours=2))
    rates = pass_rates([(datetime(2026, 1, 1, 23, 0), "pass")], starts, plus2)
    assert list(rates.days) == [date(2026, 1, 2)]  # 23:00 UTC is 01:00 on the 2nd at +2


def decision(kind: str, boxes: list[list[float]]) -> DecisionRow:
    return DecisionRow(kind=kind, boxes=boxes, decided_by="x", decided_at=datetime.now(UTC))


def test_review_rule() -> None:
    kept, drawn = [[1.0, 1.0, 5.0, 5.0]], [[10.0, 10.0, 20.0, 20.0]]
    assert review_of(kept, []).state == "unreviewed"
    assert review_of(kept, [decision("confirm", kept)]).boxes == kept
    assert review_of(kept, [decision("false_alarm", [])]).state == "clean"
    assert review_of(kept, [decision("missed", drawn)]).state == "incomplete"
    assert review_of([], [decision("missed", drawn)]).boxes == drawn  # a pass photo
    both = review_of(kept, [decision("confirm", kept), decision("missed", drawn)])
    assert (both.state, both.boxes) == ("scratched", kept + drawn)
    later = review_of(kept, [decision("confirm", kept), decision("false_alarm", [])])
    assert (later.state, later.usable) == ("clean", True)
    assert review_of([], [decision("confirm", [])]).state == "clean"
