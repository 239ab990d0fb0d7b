"""`assistant feedback export`: answer feedback as CSV or JSON, e.g. bad answers for the dev set."""

from __future__ import annotations

import csv
import io
import json

import click
import sqlalchemy as sa

from assistant.cli.context import Context
from assistant.db.database import DatabaseError
from assistant.feedback.store import FeedbackStore, SinceError, parse_since

CSV_COLUMNS = (
    "id", "created", "source", "partner_id", "rating", "comment", "question", "answer", "backend",
    "conversation_id", "citations",
)


@click.group("feedback")
def feedback_cli() -> None:
    """Feedback on answers (👍/👎 and comments) from the API, the UI and the widget."""


@feedback_cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="json", show_default=True)
@click.option("--since", default=None, help="ISO 8601 date or date-time (UTC), or an age: 7d, 12h.")
@click.option("--rating", type=click.Choice(["up", "down"]), default=None, help="Only this rating.")
@click.option("--source", type=click.Choice(["api", "ui", "widget"]), default=None, help="Only this source.")
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-", help="File (default: stdout).")
def export(fmt: str, since: str | None, rating: str | None, source: str | None, output: io.TextIOBase) -> None:
    """Write the feedback records, oldest first (`--rating down --format json` gives the
    questions to add to the dev set, with the answer and citations that were wrong)."""
    settings = click.get_current_context().ensure_object(Context).settings
    try:
        after = parse_since(since)
    except SinceError as exc:
        raise click.BadParameter(str(exc).removeprefix("since: "), param_hint="--since") from None
    store = FeedbackStore.from_settings(settings)
    try:
        records = store.records(rating=rating, since=after, source=source)  # type: ignore[arg-type]
    except DatabaseError as exc:
        raise click.ClickException(str(exc)) from exc
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        raise click.ClickException(f"feedback database {store.db.label}: {str(exc).splitlines()[0]}") from exc
    finally:
        store.close()
    records.reverse()
    rows = [r.model_dump(mode="json") for r in records]
    if fmt == "json":
        output.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return
    writer = csv.DictWriter(output, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "citations": json.dumps(row["citations"], ensure_ascii=False)})
