"""GET/PUT /v1/threshold: the service's default threshold, changed by an admin only."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.helpers import MakeClient, photo_bytes, wait_ready

PHOTO = {"photo": ("p.jpg", photo_bytes(), "image/jpeg")}


def test_admin_changes_the_default_others_may_not(make_client: MakeClient,
                                                 api_keys: dict[str, str]) -> None:
    admin: TestClient = make_client(role="admin")
    wait_ready(admin)
    assert admin.get("/v1/threshold").json() == {"threshold": 0.0, "bounds": [0.0, 0.0]}
    operator = {"Authorization": f"Bearer {api_keys['operator']}"}
    refused = admin.put("/v1/threshold", json={"threshold": 0.9}, headers=operator)
    assert refused.status_code == 403 and "needs role admin" in refused.json()["detail"]
    assert admin.put("/v1/threshold", json={"threshold": 1.5}).status_code == 422
    assert admin.put("/v1/threshold", json={"threshold": 0.9, "x": 1}).status_code == 422
    changed = admin.put("/v1/threshold", json={"threshold": 0.9})
    assert changed.status_code == 200
    assert changed.json() == {"threshold": 0.9, "bounds": [0.9, 0.9]}  # unset bounds follow
    done = admin.post("/v1/inspect", files=PHOTO, headers=operator)
    assert done.status_code == 200, done.text
    assert done.json()["threshold"] == 0.9  # the operator's inspection uses the new default
    viewer = {"Authorization": f"Bearer {api_keys['viewer']}"}
    assert admin.get("/v1/threshold", headers=viewer).json()["threshold"] == 0.9
    anon = admin.get("/v1/threshold", headers={"Authorization": ""})
    assert anon.status_code == 401
