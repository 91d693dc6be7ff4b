"""The names of everything Folio keeps in Redis. Free of Django, so that settings (which load before any app)
name their Redis keys the same way as the code does."""

from __future__ import annotations

# Every key Folio writes starts with it, so a shared Redis can host other tenants and an operator can find
# (or flush) everything of ours by that prefix.
KEY_PREFIX = "folio"


def redis_key(*parts: object) -> str:
    """`folio:<part>:<part>…`, e.g. redis_key("job", job_id, "errors") == "folio:job:<id>:errors"."""
    return ":".join((KEY_PREFIX, *(str(part) for part in parts)))
