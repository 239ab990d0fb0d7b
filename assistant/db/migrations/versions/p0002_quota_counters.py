"""quota_counters: admitted widget requests per partner and per visitor per UTC day.

Revision ID: p0002
Revises: p0001

One row per (subject, day), counted with one `INSERT … ON CONFLICT … DO UPDATE … RETURNING`
(`assistant.db.counters`), so replicas sharing a database never both pass the last unit.
Subjects: `p:<partner id>`, `v:<partner id>:<visitor hash>`. Seeded from the usage log of
the last two days, so an upgrade does not hand out a fresh day.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "p0002"
down_revision = "p0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quota_counters",
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("day", sa.BigInteger, nullable=False),  # epoch second of the UTC midnight
        sa.Column("count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("subject", "day"),
    )
    day = (
        "CAST(ts / 86400 AS INTEGER) * 86400"
        if op.get_bind().dialect.name == "sqlite"
        else "CAST(FLOOR(ts / 86400) AS BIGINT) * 86400"
    )
    since = {"since": time.time() - 2 * 86400}
    op.get_bind().execute(
        sa.text(
            f"INSERT INTO quota_counters (subject, day, count) SELECT 'p:' || partner_id, {day}, COUNT(*)"
            f" FROM requests WHERE admitted = 1 AND ts >= :since GROUP BY partner_id, {day}"
        ),
        since,
    )
    op.get_bind().execute(
        sa.text(
            f"INSERT INTO quota_counters (subject, day, count)"
            f" SELECT 'v:' || partner_id || ':' || visitor, {day}, COUNT(*) FROM requests"
            f" WHERE admitted = 1 AND visitor IS NOT NULL AND ts >= :since GROUP BY partner_id, visitor, {day}"
        ),
        since,
    )


def downgrade() -> None:
    op.drop_table("quota_counters")
