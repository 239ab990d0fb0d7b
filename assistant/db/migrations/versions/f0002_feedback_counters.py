"""feedback_counters: widget feedback records per visitor per UTC day.

Revision ID: f0002
Revises: f0001

Like `quota_counters` (partners branch), in the feedback database: subject
`v:<partner id>:<visitor hash>`, seeded from the last two days of feedback.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "f0002"
down_revision = "f0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback_counters",
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("day", sa.BigInteger, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("subject", "day"),
    )
    day = (
        "CAST(ts / 86400 AS INTEGER) * 86400"
        if op.get_bind().dialect.name == "sqlite"
        else "CAST(FLOOR(ts / 86400) AS BIGINT) * 86400"
    )
    op.get_bind().execute(
        sa.text(
            f"INSERT INTO feedback_counters (subject, day, count)"
            f" SELECT 'v:' || COALESCE(partner_id, '') || ':' || visitor, {day}, COUNT(*) FROM feedback"
            f" WHERE visitor IS NOT NULL AND ts >= :since GROUP BY partner_id, visitor, {day}"
        ),
        {"since": time.time() - 2 * 86400},
    )


def downgrade() -> None:
    op.drop_table("feedback_counters")
