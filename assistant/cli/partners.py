"""`assistant partners add|list|revoke|usage|prune`: partner websites that embed the chat widget."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager

import click
import sqlalchemy as sa

from assistant.cli.context import Context
from assistant.db.database import DatabaseError
from assistant.partners.errors import PartnerError
from assistant.partners.store import DAY_S, DEFAULT_PER_DAY, DEFAULT_PER_MINUTE, PartnerStore


def _store() -> PartnerStore:
    """The store named by the command's settings (the same `Context` as every command)."""
    ctx = click.get_current_context().ensure_object(Context)
    return PartnerStore.from_settings(ctx.settings)


@contextmanager
def _clean_errors() -> Iterator[None]:
    try:
        yield
    except (PartnerError, DatabaseError) as exc:
        raise click.ClickException(str(exc)) from exc
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        raise click.ClickException(f"partner database: {str(exc).splitlines()[0]}") from exc


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


@click.group("partners")
def partners_cli() -> None:
    """Partner websites that embed the chat widget (keys, origins, quotas, usage)."""


@partners_cli.command("add")
@click.argument("name")
@click.option(
    "--origin",
    "origins",
    multiple=True,
    metavar="URL",
    help="An allowed page origin, e.g. https://www.example.org (repeatable; at least one).",
)
@click.option("--per-minute", type=click.IntRange(1), default=DEFAULT_PER_MINUTE, show_default=True)
@click.option("--per-day", type=click.IntRange(1), default=DEFAULT_PER_DAY, show_default=True)
def add_command(name: str, origins: tuple[str, ...], per_minute: int, per_day: int) -> None:
    """Add a partner and print its key (once)."""
    if not origins:
        raise click.UsageError("at least one --origin is required: a key with no allowed origins serves nobody.")
    with _clean_errors():
        store = _store()
        try:
            partner_id, key = store.add(name, origins, per_minute, per_day)
            partner = store.get(partner_id)
        finally:
            store.close()
    click.echo(f"Added partner {partner.name} (id {partner.id})")
    click.echo(f"  origins: {', '.join(partner.origins)}")
    click.echo(f"  quotas:  {per_minute}/minute, {per_day}/day")
    click.echo(
        click.style("Key (shown only now; only a keyed hash is stored, so save it somewhere safe):", fg="yellow"),
        err=True,
    )
    click.echo(key)
    click.echo(
        f'Embed: <script src="https://YOUR-ASSISTANT-HOST/widget.js" data-partner-key="{key}" async></script>',
        err=True,
    )


@partners_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(as_json: bool) -> None:
    """List partners (keys are never shown)."""
    with _clean_errors():
        store = _store()
        try:
            partners = store.list()
        finally:
            store.close()
    if as_json:
        click.echo(json.dumps([p.as_dict() for p in partners], ensure_ascii=False, indent=2))
        return
    if not partners:
        click.echo("No partners. Add one: assistant partners add NAME --origin https://…")
        return
    for p in partners:
        state = "active" if p.active else f"revoked {_when(p.revoked)}"
        click.echo(
            click.style(f"{p.id}  {p.name}", bold=True)
            + f"  [{state}]  {p.per_minute}/min {p.per_day}/day  created {_when(p.created)}"
        )
        click.echo(f"    origins: {', '.join(p.origins) or '(none: serves nobody)'}")


@partners_cli.command("revoke")
@click.argument("id_or_name")
def revoke_command(id_or_name: str) -> None:
    """Revoke a partner's key (by id or name); it stops working at once."""
    with _clean_errors():
        store = _store()
        try:
            partner = store.revoke(id_or_name)
        finally:
            store.close()
    click.echo(f"Revoked partner {partner.name} (id {partner.id}); its key no longer works.")


@partners_cli.command("usage")
@click.option("--days", type=click.IntRange(1), default=None, help="Only the last N days (default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def usage_command(days: int | None, as_json: bool) -> None:
    """Widget requests per partner: answered, refused (403), over quota (429), latency."""
    with _clean_errors():
        store = _store()
        try:
            since = store.clock() - days * DAY_S if days else None
            rows = store.usage(since)
        finally:
            store.close()
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in rows], ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("No partners.")
        return
    header = f"{'id':<12}  {'partner':<24} {'requests':>8} {'answered':>8} {'403':>5} {'429':>5} {'failed':>6} {'avg ms':>8} {'p95 ms':>8} {'today':>6}  last request"
    click.echo(header)
    for r in rows:
        name = r.name if r.active else f"{r.name} (revoked)"

        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v:.0f}"

        click.echo(
            f"{r.partner_id:<12}  {name[:24]:<24} {r.requests:>8} {r.answered:>8} {r.refused:>5} "
            f"{r.limited:>5} {r.failed:>6} {ms(r.avg_ms):>8} {ms(r.p95_ms):>8} {r.today:>6}  {_when(r.last)}"
        )


@partners_cli.command("prune")
def prune_command() -> None:
    """Delete usage records older than ASSISTANT_WIDGET_USAGE_RETENTION_DAYS (the server also
    does this on its own, at most once an hour)."""
    with _clean_errors():
        store = _store()
        try:
            requests, refusals = store.prune()
        finally:
            store.close()
    click.echo(
        f"Deleted {requests} request record(s) and {refusals} daily refusal count(s) older than "
        f"{store.retention_days} days."
    )
