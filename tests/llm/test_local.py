"""The bundled model's chat template, read from its GGUF file for answers whose start is given."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.llm.local import chat_template
from assistant.llm.model_file import ensure_model_file
from tests.conftest import make_settings


def test_a_file_that_is_not_a_model_gives_no_template(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    assert chat_template(broken) is None
    assert "chat endpoint" in caplog.text


@pytest.mark.slow
def test_the_bundled_models_template_ends_where_the_reply_begins(capfd: pytest.CaptureFixture[str]) -> None:
    settings = make_settings()
    template = chat_template(ensure_model_file(settings.models_dir, custom_path=settings.local_model_path))
    assert template is not None
    rendered = template(messages=[{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}])
    assert rendered.prompt.endswith("Q<|im_end|>\n<|im_start|>assistant\n"), rendered.prompt
    assert "<|im_end|>" in (rendered.stop or [])
    assert "n_ctx" not in capfd.readouterr().err  # llama.cpp's vocabulary warning is not shown
