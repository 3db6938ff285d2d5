"""Access control: API keys and roles, web sign-in cookies, trusted hosts, same-origin writes.

The tests of the key store (keys, sign-ins, revocation) run on SQLite and on PostgreSQL
(``BOTH_DATABASES``).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from scratchdet.service.keys import open_key_store
from scratchdet.service.security import is_loopback, split_host, startup_refusal
from service.helpers import BOTH_DATABASES, MakeClient, photo_bytes, wait_ready

PHOTO = {"photo": ("p.jpg", photo_bytes(), "image/jpeg")}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def anon(make_client: MakeClient) -> TestClient:
    """A client that sends no key (each test adds the headers it means)."""
    client = make_client(role=None)
    wait_ready(client)
    return client


@BOTH_DATABASES
def test_no_key_or_a_bad_one_is_401(anon: TestClient) -> None:
    for headers, words in [
        ({}, "an API key is needed"),
        (bearer("sdk_not-a-key"), "unknown or revoked API key"),
        ({"Authorization": "Basic dXNlcjpwdw=="}, "must be 'Bearer <API key>'"),
        ({"Authorization": "Bearer "}, "must be 'Bearer <API key>'"),
    ]:
        for method, path in [("POST", "/v1/inspect"), ("GET", "/v1/inspections"),
                             ("GET", "/v1/inspections/x/photo"), ("GET", "/v1/session")]:
            response = anon.request(method, path, headers=headers,
                                    files=PHOTO if method == "POST" else None)
            assert response.status_code == 401, (headers, path)
            assert response.json() == {"error": "unauthorized", "detail": response.json()["detail"]}
            assert words in response.json()["detail"], (headers, path)
            assert response.headers["www-authenticate"] == "Bearer"


def test_health_and_page_stay_open(anon: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/", "/static/app.js", "/openapi.json"):
        assert anon.get(path).status_code == 200, path


def test_roles(anon: TestClient, api_keys: dict[str, str]) -> None:
    viewer, operator, admin = (bearer(api_keys[r]) for r in ("viewer", "operator", "admin"))
    refused = anon.post("/v1/inspect", files=PHOTO, headers=viewer)
    assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
    assert refused.json()["detail"] == (
        "key 'test-viewer' has role viewer; POST /v1/inspect needs role operator or higher"
    )
    done = anon.post("/v1/inspect", files=PHOTO, headers=operator)
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["threshold"] == 0.0  # the service default
    for path in (f"/v1/inspections/{body['id']}", body["photo_url"], body["overlay_url"],
                 "/v1/inspections"):
        assert anon.get(path, headers=viewer).status_code == 200, path
    delete = f"/v1/inspections/{body['id']}"
    assert anon.delete(delete, headers=operator).status_code == 403
    assert anon.delete(delete, headers=admin).status_code == 204
    assert anon.get(delete, headers=viewer).status_code == 404
    assert anon.get("/v1/inspections", headers=viewer).json()["total"] == 0
    assert anon.delete(delete, headers=admin).status_code == 404


def test_threshold_bounds_per_role(make_client: MakeClient, api_keys: dict[str, str]) -> None:
    fixed = make_client(role="operator")
    wait_ready(fixed)
    moved = fixed.post("/v1/inspect", files=PHOTO, data={"threshold": "0.3"})
    assert (moved.status_code, moved.json()["error"]) == (403, "threshold_not_allowed")
    assert "role operator may not use threshold 0.3; allowed: 0 " in moved.json()["detail"]
    same = fixed.post("/v1/inspect", files=PHOTO, data={"threshold": "0"})
    assert same.status_code == 200, same.text
    admin = fixed.post("/v1/inspect", files=PHOTO, data={"threshold": "0.97"},
                       headers=bearer(api_keys["admin"]))
    assert (admin.status_code, admin.json()["threshold"]) == (200, 0.97)
    ranged = make_client(role="operator", threshold_min=0.0, threshold_max=0.4)
    wait_ready(ranged)
    assert ranged.post("/v1/inspect", files=PHOTO, data={"threshold": "0.4"}).status_code == 200
    over = ranged.post("/v1/inspect", files=PHOTO, data={"threshold": "0.41"})
    assert over.status_code == 403 and "allowed: [0, 0.4]" in over.json()["detail"]
    session = ranged.get("/v1/session").json()
    assert (session["role"], session["threshold_min"], session["threshold_max"]) == (
        "operator", 0.0, 0.4)


def test_cross_site_writes_are_refused(anon: TestClient, api_keys: dict[str, str]) -> None:
    admin = bearer(api_keys["admin"])
    for origin in ("https://evil.example", "http://testserver:8080", "null",
                   "http://localhost"):
        response = anon.post("/v1/inspect", files=PHOTO, headers={**admin, "Origin": origin})
        assert (response.status_code, response.json()["error"]) == (403, "cross_origin"), origin
        assert f"origin '{origin}' refused" in response.json()["detail"]
        signin = anon.post("/v1/session", data={"key": api_keys["admin"]},
                           headers={"Origin": origin})
        assert signin.status_code == 403 and "set-cookie" not in signin.headers
    own = anon.post("/v1/inspect", files=PHOTO, headers={**admin, "Origin": "http://testserver"})
    assert own.status_code == 200, own.text
    # Reads may come from anywhere (the key decides); writes without an Origin are API clients.
    assert anon.get("/v1/inspections", headers={**admin, "Origin": "https://x.example"}).is_success
    assert anon.get("/v1/inspections").status_code == 401
    assert anon.get("/v1/inspections", headers=admin).json()["total"] == 1


def test_foreign_host_is_400(make_client: MakeClient) -> None:
    client = make_client(allowed_hosts=("localhost", "testserver", "parts.example"))
    wait_ready(client)
    foreign = client.get("/v1/inspections", headers={"Host": "evil.example:8000"})
    assert (foreign.status_code, foreign.json()["error"]) == (400, "bad_host")
    assert foreign.json()["detail"].startswith(
        "Host 'evil.example:8000' is not served here; allowed: localhost, parts.example")
    assert client.post("/v1/inspect", files=PHOTO,
                       headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/v1/inspections", headers={"Host": "PARTS.example:8000"}).is_success
    assert client.get("/healthz", headers={"Host": "10.1.2.3:8000"}).status_code == 200
    anything = make_client(allowed_hosts=("*",))
    wait_ready(anything)
    assert anything.get("/v1/inspections", headers={"Host": "evil.example"}).is_success


@BOTH_DATABASES
def test_cookie_sign_in_and_out(anon: TestClient, api_keys: dict[str, str]) -> None:
    wrong = anon.post("/v1/session", data={"key": "sdk_guess"})
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    response = anon.post("/v1/session", data={"key": api_keys["operator"]},
                         headers={"Origin": "http://testserver"})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "test-operator" and response.json()["role"] == "operator"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("scratchdet_session=")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= attributes
    assert api_keys["operator"] not in cookie  # the cookie holds a session token, not the key
    assert anon.get("/v1/session").json()["name"] == "test-operator"
    assert anon.post("/v1/inspect", files=PHOTO).status_code == 200
    assert anon.delete("/v1/inspections/x").status_code == 403  # still the operator's role
    assert anon.delete("/v1/session").status_code == 204
    assert anon.get("/v1/inspections").status_code == 401
    anon.cookies.set("scratchdet_session", "made-up")
    expired = anon.get("/v1/inspections")
    assert expired.status_code == 401 and "sign in again" in expired.json()["detail"]


@BOTH_DATABASES
def test_revoked_key_and_its_sessions_are_refused(
    anon: TestClient, api_keys: dict[str, str], settings
) -> None:
    key = api_keys["viewer"]
    assert anon.get("/v1/inspections", headers=bearer(key)).status_code == 200
    assert anon.post("/v1/session", data={"key": key}).status_code == 200
    store = open_key_store(settings.db_url)
    assert store.revoke("test-viewer") and not store.revoke("test-viewer")
    store.close()
    revoked = anon.get("/v1/inspections", headers=bearer(key))
    assert (revoked.status_code, revoked.json()["detail"]) == (401, "unknown or revoked API key")
    assert anon.get("/v1/inspections").status_code == 401  # the signed-in page too


def test_no_auth_lets_everyone_in(make_client: MakeClient) -> None:
    client = make_client(role=None, auth=False)
    wait_ready(client)
    assert client.post("/v1/inspect", files=PHOTO, data={"threshold": "0.9"}).status_code == 200
    assert client.get("/v1/session").json()["auth"] is False


@BOTH_DATABASES
def test_keys_are_stored_hashed(settings) -> None:
    store = open_key_store(settings.db_url)
    key = store.create("line-3", "operator")
    assert key.startswith("sdk_") and len(key) == 4 + 43
    with pytest.raises(ValueError, match="exists already"):
        store.create("line-3", "viewer")
    with pytest.raises(ValueError, match="unknown role 'root'; expected one of viewer"):
        store.create("other", "root")
    with pytest.raises(ValueError, match="key name 'a b'"):
        store.create("a b", "viewer")
    if settings.db_url.startswith("sqlite"):
        with open(settings.db_url.split("///", 1)[1], "rb") as db:
            assert key.encode() not in db.read()
    else:
        with store.engine.connect() as connection:
            rows = [r[0] for r in connection.exec_driver_sql("SELECT t::text FROM api_keys t")]
        assert len(rows) == 1 and "line-3" in rows[0] and key not in rows[0]
    store.close()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("localhost:8000", ("localhost", 8000)), ("[::1]:8000", ("::1", 8000)),
     ("::1", ("::1", None)), ("Parts.Example", ("parts.example", None))],
)
def test_split_host(value: str, expected: tuple[str, int | None]) -> None:
    assert split_host(value) == expected


@BOTH_DATABASES
def test_startup_refusals(settings, api_keys: dict[str, str], tmp_path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert startup_refusal("127.0.0.1", False, settings.db_url) is None
    assert "only on a loopback" in startup_refusal("0.0.0.0", False, settings.db_url)
    assert startup_refusal("0.0.0.0", True, settings.db_url) is None  # keys exist
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    assert startup_refusal("127.0.0.1", True, empty) is None
    assert "scratchdet token create admin --role admin --db" in startup_refusal(
        "0.0.0.0", True, empty)
