"""The settings every `assistant` command shares, read once from the environment."""

from __future__ import annotations

import click

from assistant.settings import Settings


class Context:
    def __init__(self) -> None:
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from pydantic import ValidationError

            try:
                self._settings = Settings()
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                )
                raise click.ClickException(f"Invalid settings: {problems}") from exc
            from assistant.offline import apply_offline_env

            apply_offline_env(self._settings.cache_dir)
        return self._settings
