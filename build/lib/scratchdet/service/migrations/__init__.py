"""Alembic migrations of the history database (inspections, API keys, web sign-ins).

``scratchdet.service.db.migrate`` runs them at start-up, with a Config built in code (no
alembic.ini): every ``open_history``/``make_engine`` brings the schema to the newest revision.
A schema change is a new file in ``versions/`` (its ``down_revision`` the previous head);
``db.write_revision(URL, MESSAGE)`` drafts one by comparing the models with a database at the
current head. Revision 0001 is the schema the service made with ``create_all`` before
migrations existed; such a database is recognised and stamped 0001, not re-created.
"""

#: The revision of the schema made by ``create_all`` before migrations (26 Nov).
BASELINE = "0001"
#: Its tables, as a database of that time has them.
BASELINE_TABLES = ("inspections", "api_keys", "web_sessions")
#: Their columns at that revision (frozen: the models move on, a 26 Nov history does not).
BASELINE_COLUMNS: dict[str, frozenset[str]] = {
    "inspections": frozenset({
        "id", "created_at", "filename", "photo_path", "width", "height", "threshold",
        "verdict", "num_boxes", "boxes", "scores", "timings", "model_id"}),
    "api_keys": frozenset({"name", "role", "key_hash", "created_at"}),
    "web_sessions": frozenset({"token_hash", "key_name", "expires_at"}),
}
