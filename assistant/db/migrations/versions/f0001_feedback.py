"""feedback: 👍/👎 and comments on answers.

Revision ID: f0001
Revises: (base of the `feedback` branch)

A SQLite file written before Alembic (`feedback.db` of older versions) already has this
table: it is kept as it is (same columns).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "f0001"
down_revision = None
branch_labels = ("feedback",)
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    if "feedback" not in sa.inspect(op.get_bind()).get_table_names():
        op.create_table(
            "feedback",
            sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
            sa.Column("ts", sa.Double, nullable=False),  # epoch seconds, UTC
            sa.Column("source", sa.Text, nullable=False),  # api | ui | widget
            sa.Column("partner_id", sa.Text),  # the widget partner (source widget)
            sa.Column("visitor", sa.Text),  # keyed hash of the widget visitor's address
            sa.Column("rating", sa.Text, nullable=False),  # up | down
            sa.Column("comment", sa.Text),
            sa.Column("question", sa.Text, nullable=False),
            sa.Column("answer", sa.Text, nullable=False),
            sa.Column("citations", sa.Text, nullable=False),  # JSON list
            sa.Column("backend", sa.Text, nullable=False),
            sa.Column("conversation_id", sa.Text),
            sqlite_autoincrement=True,
        )
    op.create_index("feedback_ts", "feedback", ["ts"], if_not_exists=True)
    op.create_index("feedback_visitor", "feedback", ["partner_id", "visitor", "ts"], if_not_exists=True)


def downgrade() -> None:
    op.drop_table("feedback")
