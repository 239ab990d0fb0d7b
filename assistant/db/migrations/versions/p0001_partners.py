"""partners: keys, origins, quotas; the usage log and the daily refusal counters.

Revision ID: p0001
Revises: (base of the `partners` branch)

A SQLite file written before Alembic (`partners.db` of older versions) already has these
tables: they are kept as they are (same columns), and a file from before the per-visitor
quotas gets its `visitor` column, its refusal rows folded into `refusals`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "p0001"
down_revision = None
branch_labels = ("partners",)
depends_on = None

# Integer ids are SQLite's rowid (INTEGER PRIMARY KEY), BIGSERIAL on PostgreSQL.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The previous version's `requests` had no visitor column and one row (with the request's
# raw Origin) per refusal; those rows become daily counters. SQLite only (no older
# PostgreSQL databases exist).
FOLD_LEGACY_REFUSALS = [
    "ALTER TABLE requests ADD COLUMN visitor TEXT",
    "INSERT INTO refusals (day, partner_id, status, reason, count, last)"
    " SELECT CAST(ts / 86400 AS INTEGER) * 86400, partner_id, COALESCE(status, 0), 'legacy', COUNT(*), MAX(ts)"
    " FROM requests WHERE admitted = 0 GROUP BY 1, 2, 3",
    "DELETE FROM requests WHERE admitted = 0",
]


def upgrade() -> None:
    bind = op.get_bind()
    tables = set(sa.inspect(bind).get_table_names())
    if "partners" not in tables:
        op.create_table(
            "partners",
            sa.Column("id", sa.Text, primary_key=True),  # the public part of the key
            sa.Column("name", sa.Text, nullable=False),
            sa.Column("key_hash", sa.Text, nullable=False),  # hmac-sha256$pepper_id$digest (older: scrypt$…)
            sa.Column("origins", sa.Text, nullable=False),  # JSON list of normalised origins
            sa.Column("per_minute", sa.Integer, nullable=False),
            sa.Column("per_day", sa.Integer, nullable=False),
            sa.Column("created", sa.Double, nullable=False),  # epoch seconds
            sa.Column("revoked", sa.Double),  # NULL while active
        )
    op.create_index(
        "partners_active_name",
        "partners",
        ["name"],
        unique=True,
        sqlite_where=sa.text("revoked IS NULL"),
        postgresql_where=sa.text("revoked IS NULL"),
        if_not_exists=True,
    )
    if "refusals" not in tables:
        op.create_table(
            "refusals",
            sa.Column("day", sa.BigInteger, nullable=False),  # the UTC day, as the epoch second of its midnight
            sa.Column("partner_id", sa.Text, nullable=False),
            sa.Column("status", sa.Integer, nullable=False),
            sa.Column("reason", sa.Text, nullable=False),  # origin, body, quota-partner, quota-visitor, …
            sa.Column("count", sa.Integer, nullable=False),
            sa.Column("last", sa.Double, nullable=False),  # time of the latest one
            sa.PrimaryKeyConstraint("day", "partner_id", "status", "reason"),
        )
    op.create_index("refusals_partner", "refusals", ["partner_id", "day"], if_not_exists=True)
    if "requests" not in tables:
        op.create_table(
            "requests",
            sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
            sa.Column("partner_id", sa.Text, nullable=False),
            sa.Column("ts", sa.Double, nullable=False),
            sa.Column("admitted", sa.Integer, nullable=False),  # 1: counted against the quotas
            sa.Column("status", sa.Integer),  # NULL while the answer is streaming
            sa.Column("latency_ms", sa.Double),
            sa.Column("origin", sa.Text),  # one of the partner's allowed origins
            sa.Column("visitor", sa.Text),  # keyed hash of the client address
            sqlite_autoincrement=True,
        )
    elif "visitor" not in {c["name"] for c in sa.inspect(bind).get_columns("requests")}:
        for statement in FOLD_LEGACY_REFUSALS:
            op.execute(statement)
    op.create_index("requests_quota", "requests", ["partner_id", "admitted", "ts"], if_not_exists=True)
    op.create_index("requests_ts", "requests", ["ts"], if_not_exists=True)
    op.create_index("requests_visitor", "requests", ["partner_id", "visitor", "admitted", "ts"], if_not_exists=True)


def downgrade() -> None:
    op.drop_table("requests")
    op.drop_table("refusals")
    op.drop_table("partners")
