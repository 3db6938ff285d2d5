"""The CLI around the service: ``token create|list|revoke``, ``history prune`` and the checks
``serve`` makes before it loads a model."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from scratchdet.cli import app
from scratchdet.service.keys import open_key_store

runner = CliRunner()


def test_token_create_list_revoke(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'h.db'}"
    empty = runner.invoke(app, ["token", "list", "--db", db])
    assert empty.exit_code == 0 and "no keys in" in empty.output
    made = runner.invoke(app, ["token", "create", "line-1", "--role", "operator", "--db", db])
    assert made.exit_code == 0, made.output
    key = made.output.strip().splitlines()[-1]
    assert key.startswith("sdk_")
    store = open_key_store(db)
    principal = store.verify(key)
    store.close()
    assert principal is not None and (principal.name, principal.role) == ("line-1", "operator")
    runner.invoke(app, ["token", "create", "boss", "--role", "admin", "--db", db])
    listed = runner.invoke(app, ["token", "list", "--db", db])
    lines = listed.output.strip().splitlines()
    assert [line.split()[:2] for line in lines] == [["boss", "admin"], ["line-1", "operator"]]
    assert key not in listed.output
    again = runner.invoke(app, ["token", "create", "line-1", "--role", "viewer", "--db", db])
    assert again.exit_code == 2 and "exists already" in again.output
    bad = runner.invoke(app, ["token", "create", "x", "--role", "root", "--db", db])
    assert bad.exit_code == 2 and "unknown role 'root'" in bad.output
    gone = runner.invoke(app, ["token", "revoke", "line-1", "--db", db])
    assert gone.exit_code == 0 and "revoked key 'line-1'" in gone.output
    store = open_key_store(db)
    assert store.verify(key) is None
    store.close()
    missing = runner.invoke(app, ["token", "revoke", "line-1", "--db", db])
    assert missing.exit_code == 2 and "no key named 'line-1'" in missing.output


def test_serve_refuses_no_auth_off_loopback(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'h.db'}"
    res = runner.invoke(app, ["serve", "--tiny-random", "--host", "0.0.0.0", "--no-auth",
                              "--db", db])
    assert res.exit_code == 2
    assert "--no-auth is allowed only on a loopback address" in res.output


def test_serve_refuses_a_reachable_host_without_keys(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'h.db'}"
    res = runner.invoke(app, ["serve", "--tiny-random", "--host", "0.0.0.0", "--db", db])
    assert res.exit_code == 2
    assert f"scratchdet token create admin --role admin --db {db}" in res.output


def test_a_database_that_cannot_be_opened_is_named_not_a_traceback(tmp_path: Path) -> None:
    down = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
    for args in (["token", "list", "--db", down],
                 ["history", "prune", "--db", down, "--storage", str(tmp_path), "--max-photos",
                  "1"],
                 ["serve", "--tiny-random", "--db", down, "--port", "1"],
                 ["token", "list", "--db", "nosuchdriver://x"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "error: cannot open the history database" in result.output, result.output
        assert "Traceback" not in result.output
