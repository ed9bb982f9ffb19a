"""The end-to-end tier: real models on real speech (loaded once), real gateways, Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from pipeline.models import Models
from pipeline.settings import Settings
from testkit.harness import serving
from testkit.redis_server import LocalRedis


@pytest.fixture(scope="session")
def models(settings: Settings) -> Iterator[Models]:
    """The default offline models, loaded once for the whole session."""
    loaded = Models(settings)
    yield loaded
    loaded.close()


@pytest.fixture
async def gateway(settings: Settings, models: Models) -> AsyncIterator[str]:
    async with serving(settings, models) as url:
        yield url


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    """A private redis-server (Debian's) on a free 127.0.0.1 port, for the whole session."""
    with LocalRedis(tmp_path_factory.mktemp("redis"), password="test-secret") as server:
        yield server


@pytest.fixture
def redis_url(redis_server: LocalRedis) -> Iterator[str]:
    """A fresh, empty Redis for each test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url
