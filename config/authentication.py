"""API tokens that expire API_TOKEN_TTL_HOURS after they were issued, looked up through a short Redis cache.

Kept apart from config/auth.py (the login views): DRF imports authentication classes while its own
views module is still loading.

Every API request names its token; looking it up and loading its user is a join in Postgres on each
request. A valid token's user row (all but the password hash) and issue time are kept in Redis for
AUTH_CACHE_SECONDS, under a SHA-256 of the key (Redis never holds a usable credential). Expiry is
checked on every request against the cached issue time, so a token expires on time whatever the
cache holds. Deleting a token, saving or deleting its user (deactivation, staff flag) forget the entry, and
a new password deletes the user's tokens (config/receivers.py); a change made behind the ORM's back (a queryset
`update()`) shows within AUTH_CACHE_SECONDS. Redis unreachable: the database answers, as before. An entry's bytes are
decoded once per process (_entry_decoded): the same bytes always say the same, and each request still gets
new instances of its token and user.

A view whose own Redis read needs nothing from the user (the dashboard's cached answers, read before
authentication and handed out only after the owner check: portfolio/api/views.py) queues the token's
entry on its pipeline (token_cache_queue): authentication then uses that reply instead of a round trip of
its own. The entry is read the same way, in the same request, so deletion and expiry apply as above.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token

from core.redis_store import redis_client, redis_key

logger = logging.getLogger(__name__)

# Never copied out of Postgres: the cache needs who the user is, not how they log in.
UNCACHED_USER_FIELDS = {"password"}


# The Redis the token cache lives on (the CACHES alias): a view pipelining its own read with the token's
# (token_cache_queue) must use this client.
TOKEN_CACHE_ALIAS = "default"


def token_expired(token: Token) -> bool:
    return token.created < timezone.now() - timedelta(hours=settings.API_TOKEN_TTL_HOURS)


def _cache_key(key: str) -> str:
    return redis_key("auth", "token", hashlib.sha256(key.encode()).hexdigest())


def _user_fields():
    return [f for f in get_user_model()._meta.concrete_fields if f.name not in UNCACHED_USER_FIELDS]


def _token_dump(token: Token) -> str:
    user = token.user
    fields = {f.attname: None if f.value_from_object(user) is None else f.value_to_string(user)
              for f in _user_fields()}
    return json.dumps({"created": token.created.isoformat(), "user": fields})


def _token_load(key: str, raw: bytes) -> Token:
    """The token and its user, built from the cache without a query (the password hash stays deferred:
    read from Postgres only if something asks for it). New instances each time: a request may change its own."""
    attnames, values, created = _entry_decoded(raw)
    user = get_user_model().from_db(DEFAULT_DB_ALIAS, attnames, list(values))
    token = Token(key=key, user_id=user.pk, created=created)
    token.user = user
    return token


# Every request of a token reads the same entry until it expires or is forgotten: its JSON is decoded (a
# dozen fields, two datetimes parsed) once per process, keyed by the entry's exact bytes, so whatever the entry
# says is what is used — a changed entry (a saved user) is other bytes, decoded anew. Immutable values only.
@functools.lru_cache(maxsize=4096)
def _entry_decoded(raw: bytes) -> tuple[tuple[str, ...], tuple, datetime]:
    cached = json.loads(raw)
    fields = _user_fields()
    values = tuple(None if cached["user"][f.attname] is None else f.to_python(cached["user"][f.attname])
                   for f in fields)
    return tuple(f.attname for f in fields), values, datetime.fromisoformat(cached["created"])


def token_cache_forget(*, keys: Iterable[str]) -> None:
    """Drop these tokens' cached users: the next request reads Postgres again."""
    names = [_cache_key(key) for key in keys]
    if not names:
        return
    try:
        redis_client(TOKEN_CACHE_ALIAS).delete(*names)
    except Exception:  # Redis down: nothing cached can be read either; entries left expire on their own
        logger.warning("token cache: %d entries not forgotten (Redis unavailable)", len(names), exc_info=True)


# Where token_cache_queue leaves (key, the cache's reply) on the request for its authentication.
_READ_AHEAD = "_folio_token_cache_read"


def token_cache_queue(pipe, request) -> Callable[[list | Exception], None] | None:
    """When the request names a token (`Authorization: Token <key>`), queue the read of its cache entry on
    `pipe` and return what hands the pipeline's replies to the request (or the error that Redis could not be
    read: then Postgres answers at once): its authentication then reads no Redis of its own. None (nothing
    queued) for any other request: it authenticates as usual."""
    auth = get_authorization_header(request).split()
    if len(auth) != 2 or auth[0].lower() != ExpiringTokenAuthentication.keyword.lower().encode():
        return None  # no token, or a malformed header: authentication says why
    try:
        key = auth[1].decode()
    except UnicodeError:
        return None
    index = len(pipe)
    pipe.get(_cache_key(key))
    return lambda replies: setattr(request, _READ_AHEAD,
                                   (key, replies if isinstance(replies, Exception) else replies[index]))


class ExpiringTokenAuthentication(TokenAuthentication):
    def authenticate(self, request):
        self._read_ahead = getattr(request, _READ_AHEAD, None)
        return super().authenticate(request)

    def authenticate_credentials(self, key):
        read_ahead = getattr(self, "_read_ahead", None)
        if read_ahead is None or read_ahead[0] != key:
            token = self._cached(key)
        else:  # read with the view's answer (an exception: Redis was not reachable, ask Postgres)
            token = None if isinstance(read_ahead[1], Exception) else self._loaded(key, read_ahead[1])
        if token is None:
            user, token = super().authenticate_credentials(key)  # unknown key or inactive user: 401 here
            if not token_expired(token):
                self._remember(key, token)
        if token_expired(token):
            raise exceptions.AuthenticationFailed("Token has expired: ask /api/auth/token/ for a new one.")
        return token.user, token

    @staticmethod
    def _cached(key: str) -> Token | None:
        try:
            raw = redis_client(TOKEN_CACHE_ALIAS).get(_cache_key(key))
        except Exception:  # Redis down: ask Postgres
            logger.debug("token cache not read", exc_info=True)
            return None
        return ExpiringTokenAuthentication._loaded(key, raw)

    @staticmethod
    def _loaded(key: str, raw: bytes | None) -> Token | None:
        try:
            return None if raw is None else _token_load(key, raw)
        except Exception:  # an entry of another shape: ask Postgres
            logger.debug("token cache entry not read", exc_info=True)
            return None

    @staticmethod
    def _remember(key: str, token: Token) -> None:
        try:
            redis_client(TOKEN_CACHE_ALIAS).set(_cache_key(key), _token_dump(token), ex=settings.AUTH_CACHE_SECONDS)
        except Exception:
            logger.debug("token cache not written", exc_info=True)
