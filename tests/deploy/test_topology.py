"""The deployment of deploy/compose.yaml, without Docker: every part real, on loopback.

`deploy.local.topology` starts `chroma run`, a temporary PostgreSQL cluster, the model
server (in front of the fake OpenAI-compatible server, so a chat costs no model time),
two `assistant serve` replicas with empty index folders, and nginx with deploy/nginx.conf.
Requests go through nginx, as a partner site's would; replicas are also asked directly
to show that they agree. Skipped, with the reason, when nginx or PostgreSQL is missing
(`.ci/run` installs nginx).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from deploy.local import Topology, Unavailable, topology
from tests.fake_llm_server import FakeLLMServer
from tests.pipeline.test_replicas import _within

pytestmark = pytest.mark.slow

ADMIN = "adm-4f1c9e7a2b5d8c0e3f6a9b2c5d8e1f4a"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
PAGE = "https://partner.example"
QUERY = {"query": "Which technology transfer center serves ASEAN countries?", "k": 5}
SENTENCE = "塔斯曼海峡量子灌溉示范站于二〇二五年在奥克兰启用，由南宁技术转移联络处协调。"
NEW_DOC = f"# 部署拓扑测试说明\n\n{SENTENCE}\n"
VISITOR_PER_DAY = 3


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture(scope="module")
def top(fake: FakeLLMServer) -> Iterator[Topology]:
    env = {
        "ASSISTANT_ADMIN_TOKEN": ADMIN,
        "ASSISTANT_WIDGET_VISITOR_PER_DAY": str(VISITOR_PER_DAY),
        "ASSISTANT_WARM_START_WAIT": "120",
    }
    try:
        with topology(2, model=fake.base_url, env=env) as started:
            yield started
    except Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60, trust_env=False) as client:
        yield client


def _ids(http: httpx.Client, base: str, query: dict[str, object] = QUERY) -> list[str]:
    r = http.post(f"{base}/v1/search", json=query)
    assert r.status_code == 200, r.text
    return [hit["chunk_id"] for hit in r.json()["results"]]


def test_replicas_with_empty_index_folders_serve_the_same_results(top: Topology, http: httpx.Client) -> None:
    for node in top.replicas:
        assert not (top.root / node.name / "index" / "chroma").exists()  # nothing local: all on the server
    first, second = (_ids(http, node.url) for node in top.replicas)
    assert first and first == second
    served_by = set()
    for _ in range(6):
        r = http.post(f"{top.proxy.url}/v1/search", json=QUERY)
        assert r.status_code == 200 and [h["chunk_id"] for h in r.json()["results"]] == first
        served_by.add(r.headers["x-upstream"])
    assert served_by == {node.url.removeprefix("http://") for node in top.replicas}


def test_an_upload_and_a_delete_through_the_proxy_reach_both_replicas(top: Topology, http: httpx.Client, tmp_path: Path) -> None:
    path = tmp_path / "topology-note.md"
    path.write_text(NEW_DOC, "utf-8")
    with path.open("rb") as fh:
        r = http.post(f"{top.proxy.url}/v1/documents", headers=AUTH, files={"file": (path.name, fh)})
    assert r.status_code == 201, r.text
    doc_id = r.json()["doc_id"]
    probe = {"query": "塔斯曼海峡量子灌溉示范站", "k": 3}

    def everywhere(present: bool) -> Callable[[], bool]:
        def check() -> bool:
            return all(any(i.startswith(f"{doc_id}#") for i in _ids(http, n.url, probe)) == present for n in top.replicas)

        return check

    assert _within(10, everywhere(True)) <= 10
    assert http.delete(f"{top.proxy.url}/v1/documents/{doc_id}", headers=AUTH).status_code == 204
    assert _within(10, everywhere(False)) <= 10


def test_one_visitor_quota_across_replicas_keyed_by_the_address_nginx_saw(
    top: Topology, http: httpx.Client, fake: FakeLLMServer
) -> None:
    added = top.cli("partners", "add", "topology-partner", "--origin", PAGE)
    key = added.stdout.strip().splitlines()[-1]
    before = len(fake.chat_requests())
    statuses, served_by = [], set()
    for n in range(2 * VISITOR_PER_DAY):
        # A client naming its own address gets nowhere: nginx appends the one it saw.
        headers = {"X-Partner-Key": key, "Origin": PAGE, "X-Forwarded-For": f"203.0.113.{n + 1}"}
        r = http.post(f"{top.proxy.url}/v1/widget/chat", json={"message": QUERY["query"]}, headers=headers)
        statuses.append(r.status_code)
        served_by.add(r.headers.get("x-upstream"))
    assert statuses.count(200) == VISITOR_PER_DAY and statuses.count(429) == VISITOR_PER_DAY, statuses
    assert len(served_by) == 2  # both replicas counted against the one quota
    # Another client address (127.0.0.2 is loopback too) has its own quota: the replicas
    # key on the address nginx forwards, not on nginx's own.
    other = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=60, trust_env=False)
    with other:
        r = other.post(f"{top.proxy.url}/v1/widget/chat", json={"message": QUERY["query"]}, headers=headers)
    assert r.status_code == 200, r.text
    # The replicas answered through the model server, which fronts the upstream model.
    assert len(fake.chat_requests()) > before


def test_a_chat_streams_through_the_proxy_sources_first(top: Topology, http: httpx.Client) -> None:
    with http.stream("POST", f"{top.proxy.url}/v1/chat", json={"message": QUERY["query"], "stream": True}) as r:
        assert r.status_code == 200
        events = [line.removeprefix("event: ") for line in r.iter_lines() if line.startswith("event: ")]
    assert events[0] == "sources" and events[-1] == "done", events


def test_a_killed_replica_leaves_the_other_serving(top: Topology, http: httpx.Client) -> None:
    # Last in this module: the topology has one replica left afterwards.
    survivor, victim = top.replicas
    victim.kill()
    served_by = []
    for _ in range(8):
        r = http.post(f"{top.proxy.url}/v1/search", json=QUERY)
        assert r.status_code == 200, r.text
        served_by.append(r.headers["x-upstream"])
    assert set(served_by[-4:]) == {survivor.url.removeprefix("http://")}
