"""Against a real Qdrant server (QDRANT_URL set): skipped otherwise and not counted as coverage."""

from __future__ import annotations

import os
import uuid

import pytest

from conftest import SAMPLE, assert_consistent
from zhiku.retrieval.types import LOCAL_ADMIN

LIVE_QDRANT = os.environ.get("ZHIKU_LIVE_QDRANT_URL")
pytestmark = [pytest.mark.live,
              pytest.mark.skipif(not LIVE_QDRANT, reason="set ZHIKU_LIVE_QDRANT_URL to run live Qdrant tests")]


def test_reindex_on_a_server_moves_the_alias_and_drops_the_old_collection(make_services):
    name = f"zhiku-live-{uuid.uuid4().hex[:6]}"
    services = make_services(qdrant_url=LIVE_QDRANT, index_name=name)
    services.ingestor.ingest_paths([SAMPLE], "default", LOCAL_ADMIN)
    before = services.generations.active_generation()
    job = services.ingestor.reindex(LOCAL_ADMIN)
    assert job.state == "done", job.error
    after = services.generations.active_generation()
    from qdrant_client import QdrantClient

    client = QdrantClient(url=LIVE_QDRANT)
    aliases = {a.alias_name: a.collection_name for a in client.get_aliases().aliases}
    assert aliases[name] == after.name != before.name
    assert services.searcher.search("年假", LOCAL_ADMIN, k=1)
    assert_consistent(services)
