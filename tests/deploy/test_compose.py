"""deploy/compose.yaml, deploy/nginx.conf and deploy/Dockerfile agree with the code.

Docker is not on the test machines; `test_topology.py` runs the same topology without it.
These checks catch the drift that would only show when someone runs `docker compose up`:
a misspelt setting, replicas configured differently, an upstream the proxy does not know,
a Chroma server of another version than the client.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml

from assistant.settings import Settings
from deploy.local import NGINX_SITE, render_site

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PREFIXES = ("ASSISTANT_", "CHROMA_", "OPENAI_", "OTEL_")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text("utf-8"))
    assert isinstance(data, dict)
    return data


def _aliases() -> set[str]:
    return {f.alias for f in Settings.model_fields.values() if f.alias}


def test_every_setting_the_services_get_is_a_real_one(compose: dict[str, Any]) -> None:
    known = _aliases()
    for name, service in compose["services"].items():
        for key in service.get("environment", {}):
            if key.startswith(PREFIXES):
                assert key in known, f"{name}: {key} is not a setting (assistant/settings.py)"


def test_the_replicas_are_configured_alike_and_share_their_secrets(compose: dict[str, Any]) -> None:
    services = compose["services"]
    replicas = [n for n, s in services.items() if s.get("command") == ["assistant", "serve"]]
    assert replicas == ["app1", "app2"]
    first, second = (services[n] for n in replicas)
    assert first["environment"] == second["environment"]
    env = first["environment"]
    for shared in ("ASSISTANT_KEY_PEPPER", "ASSISTANT_SESSION_SECRET", "ASSISTANT_ADMIN_TOKEN", "ASSISTANT_DATABASE_URL"):
        assert env.get(shared), f"{shared} must be set, and the same, on every replica"
    assert env["CHROMA_HOST"] == "chroma" and "chroma" in services
    assert "@postgres:5432/" in env["ASSISTANT_DATABASE_URL"] and "postgres" in services
    assert env["OPENAI_BASE_URL"].startswith("http://model:") and "model" in services
    assert first["healthcheck"]["test"][-1].count("/readyz") == 1
    # Jobs the replicas wait for: the schema, then the index.
    assert first["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["assistant", "db", "upgrade"]
    assert services["ingest"]["command"][:2] == ["assistant", "ingest"]


def test_the_proxy_fronts_exactly_the_replicas_and_sets_the_trusted_header(compose: dict[str, Any]) -> None:
    site = NGINX_SITE.read_text("utf-8")
    upstreams = set(re.findall(r"server\s+(app\d+):8000", site))
    assert upstreams == {"app1", "app2"}
    proxy = compose["services"]["proxy"]
    assert "./nginx.conf:/etc/nginx/conf.d/default.conf:ro" in proxy["volumes"]
    assert set(proxy["depends_on"]) == upstreams
    header = compose["services"]["app1"]["environment"]["ASSISTANT_TRUSTED_PROXY_HEADER"]
    assert re.search(rf"proxy_set_header\s+{re.escape(header)}\s+\$proxy_add_x_forwarded_for;", site)
    # The loopback rendering keeps every directive and changes only addresses and the port.
    rendered = render_site(site, ["127.0.0.1:1"], 2)
    assert "server app" not in rendered and "listen 127.0.0.1:2;" in rendered
    assert rendered.count("server 127.0.0.1:1 ") == 2  # the API and the UI upstreams


def test_the_chroma_server_is_the_clients_version(compose: dict[str, Any]) -> None:
    image = compose["services"]["chroma"]["image"]
    assert image == f"chromadb/chroma:{version('chromadb')}"


def test_the_image_copies_what_exists_and_serves_by_default() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text("utf-8")
    root = DEPLOY.parent
    for source in re.findall(r"^COPY\s+(.+?)\s+\S+$", dockerfile, re.M):
        for part in source.split():
            assert (root / part).exists(), f"Dockerfile copies {part}, which is not in the repository"
    assert 'CMD ["assistant", "serve"]' in dockerfile
    assert "assistant prepare-model" in dockerfile  # the model is in the image, not fetched at run time


def test_the_example_environment_names_every_variable_the_compose_file_requires(compose: dict[str, Any]) -> None:
    text = (DEPLOY / "compose.yaml").read_text("utf-8")
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    example = {line.split("=", 1)[0] for line in (DEPLOY / "env.example").read_text("utf-8").splitlines() if "=" in line}
    assert required and required <= example, required - example
