"""The baseline: the history schema as ``create_all`` made it before migrations (26 Nov).

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Each table is created only when missing: a database from before API keys existed has
``inspections`` alone, and gets the other two here. (A database with all three is stamped
0001 by ``db.migrate`` without running this.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _inspections() -> None:
    op.create_table(
        "inspections",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("photo_path", sa.String(1024), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("num_boxes", sa.Integer(), nullable=False),
        sa.Column("boxes", sa.JSON(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("timings", sa.JSON(), nullable=False),
        sa.Column("model_id", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_inspections_created_at", "inspections", ["created_at"])
    op.create_index("ix_inspections_verdict", "inspections", ["verdict"])


def _api_keys() -> None:
    op.create_table(
        "api_keys",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("key_hash"),
    )


def _web_sessions() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("key_name", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["key_name"], ["api_keys.name"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_web_sessions_key_name", "web_sessions", ["key_name"])


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in (("inspections", _inspections), ("api_keys", _api_keys),
                         ("web_sessions", _web_sessions)):
        if name not in present:
            create()


def downgrade() -> None:
    op.drop_table("web_sessions")
    op.drop_table("api_keys")
    op.drop_table("inspections")
