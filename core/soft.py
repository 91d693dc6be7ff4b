"""Failing soft: side work (metrics, cache hints, queueing a refresh) must never fail the request or task
it rides along with. Each use says in its `what` what is lost when it fails."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)


@contextmanager
def soft_fail(what: str, *, level: int = logging.WARNING) -> Iterator[None]:
    """Run the block; an exception in it is logged (with `what`) and swallowed."""
    try:
        yield
    except Exception:
        logger.log(level, "%s", what, exc_info=True)
