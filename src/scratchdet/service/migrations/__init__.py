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
