"""Operator review: part serial, lot, station and operator of an inspection, its part region
and the boxes under the threshold; a table of operator decisions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Only nullable columns are added, so a history of revision 0001 upgrades in place: its rows
keep everything and read None in the new columns (shown as unknown, never re-thresholded
below their threshold).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("serial", sa.String(128)),
    ("lot", sa.String(128)),
    ("station", sa.String(64)),
    ("operator", sa.String(64)),
    ("part_box", sa.JSON()),
    ("below_boxes", sa.JSON()),
    ("below_scores", sa.JSON()),
)


def upgrade() -> None:
    with op.batch_alter_table("inspections") as batch:
        for name, kind in _COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
        batch.create_index("ix_inspections_serial", ["serial"])
        batch.create_index("ix_inspections_lot", ["lot"])
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("inspection_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("boxes", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["inspection_id"], ["inspections.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_decisions_inspection_id", "decisions", ["inspection_id"])
    op.create_index("ix_decisions_decided_at", "decisions", ["decided_at"])


def downgrade() -> None:
    op.drop_table("decisions")
    with op.batch_alter_table("inspections") as batch:
        batch.drop_index("ix_inspections_lot")
        batch.drop_index("ix_inspections_serial")
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
