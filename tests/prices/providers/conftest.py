"""Provider clients are tested against scripted HTTP servers on loopback: no network, no mocks."""

from collections.abc import Iterator

import pytest

from tests.stubs import StubServer


@pytest.fixture
def stub() -> Iterator[StubServer]:
    server = StubServer()
    with server.running():
        yield server
    # A request to a path no test scripted means the client called the wrong endpoint.
    assert not server.unrouted, f"requests to unscripted paths: {server.unrouted}"


@pytest.fixture(autouse=True)
def clean_redis() -> Iterator[None]:
    """Overrides the suite-wide Redis flush: provider clients never touch the cache, so these
    tests run without Redis."""
    yield
