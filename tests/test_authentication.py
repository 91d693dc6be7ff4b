"""The token → user cache (config/authentication.py, config/receivers.py), against real Redis and
Postgres: every check still holds with the cache warm — deletion, deactivation, staff changes, expiry."""

import hashlib
import json

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_redis import get_redis_connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config import authentication

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(user) -> Token:
    return Token.objects.create(user=user)


@pytest.fixture
def client(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def _cached(key: str):
    return get_redis_connection("default").get("folio:auth:token:" + hashlib.sha256(key.encode()).hexdigest())


def test_a_valid_token_is_cached_without_the_key_or_the_password_hash(client, token, user):
    assert client.get("/api/portfolios/").status_code == 200
    raw = _cached(token.key)
    entry = json.loads(raw)
    assert entry["user"]["username"] == "alice" and entry["user"]["id"] == str(user.pk)
    assert "password" not in entry["user"] and user.password.encode() not in raw
    assert not any(token.key.encode() in key for key in get_redis_connection("default").keys("*"))


def test_a_warm_token_costs_no_query(client):
    client.get("/api/portfolios/")
    with CaptureQueriesContext(connection) as warm:
        assert client.get("/api/portfolios/").status_code == 200
    sql = " ".join(q["sql"] for q in warm.captured_queries)
    assert "authtoken_token" not in sql and "auth_user" not in sql


def test_the_cached_user_is_the_same_user(client, user):
    client.get("/api/portfolios/")
    created = client.post("/api/portfolios/", {"name": "Cached", "base_currency": "EUR"}, format="json")
    assert created.status_code == 201
    assert user.portfolios.get(name="Cached").base_currency == "EUR"


def test_a_deleted_token_is_refused_with_the_cache_warm(client, token):
    assert client.get("/api/portfolios/").status_code == 200
    key = token.key
    token.delete()
    assert client.get("/api/portfolios/").status_code == 401
    assert _cached(key) is None


def test_a_deactivated_user_is_refused_with_the_cache_warm(client, user):
    assert client.get("/api/portfolios/").status_code == 200
    user.is_active = False
    user.save()
    assert client.get("/api/portfolios/").status_code == 401


def test_a_deleted_user_is_refused_with_the_cache_warm(client, user):
    assert client.get("/api/portfolios/").status_code == 200
    user.delete()
    assert client.get("/api/portfolios/").status_code == 401


def test_staff_status_changes_apply_with_the_cache_warm(client, user):
    assert client.get("/api/monitoring/cache-stats/").status_code == 403
    user.is_staff = True
    user.save()
    assert client.get("/api/monitoring/cache-stats/").status_code == 200
    get_user_model().objects.filter(pk=user.pk).update(is_staff=False)  # behind the ORM's back: cached a while
    user.refresh_from_db()
    user.save()  # any save forgets the entry
    assert client.get("/api/monitoring/cache-stats/").status_code == 403


def test_a_token_expires_on_time_with_the_cache_warm(client, token, settings):
    assert client.get("/api/portfolios/").status_code == 200
    assert _cached(token.key) is not None
    settings.API_TOKEN_TTL_HOURS = 0  # issued more than 0 hours ago: expired now, whatever the cache holds
    refused = client.get("/api/portfolios/")
    assert refused.status_code == 401 and "expired" in refused.json()["detail"]


def test_an_unknown_token_is_refused_and_not_cached(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert client.get("/api/portfolios/").status_code == 401
    assert _cached("0" * 40) is None


def test_an_unchanged_entry_is_decoded_once_and_each_request_gets_its_own_user(token, user, monkeypatch):
    raw = authentication._token_dump(token).encode()  # this token's: created now, bytes no test decoded before
    decoded = []
    loads = json.loads
    monkeypatch.setattr(authentication.json, "loads", lambda text: decoded.append(text) or loads(text))
    first, second = authentication._token_load(token.key, raw), authentication._token_load(token.key, raw)
    assert decoded == [raw]
    assert (first.key, first.user.username, first.user.pk, first.created) == (
        token.key, user.username, user.pk, token.created)
    assert first is not second and first.user is not second.user
    first.user.first_name = "changed by one request"
    assert second.user.first_name == authentication._token_load(token.key, raw).user.first_name == user.first_name

    # another entry (the user saved: forgotten, cached again) is other bytes: decoded anew
    user.first_name = "Alicia"
    user.save()
    again = authentication._token_dump(Token.objects.get(key=token.key)).encode()
    assert authentication._token_load(token.key, again).user.first_name == "Alicia" and len(decoded) == 2


def _token_then_password_changed(user) -> tuple[str, APIClient]:
    """A token asked for with the user's password, used once (cached warm), then the password changed on the
    page; the token and a client carrying it."""
    user.set_password("old-pass-1234!")
    user.save()
    token = APIClient().post("/api/auth/token/", {"username": user.username, "password": "old-pass-1234!"},
                             format="json").json()["token"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/portfolios/").status_code == 200
    web = Client()
    web.force_login(user)
    assert web.post("/accounts/password_change/", {"old_password": "old-pass-1234!",
                                                   "new_password1": "N3w-passw0rd-r19!",
                                                   "new_password2": "N3w-passw0rd-r19!"}).status_code == 302
    return token, api


def test_a_password_change_revokes_the_api_tokens_issued_before_it(user):
    _, api = _token_then_password_changed(user)
    # The password that issued the token no longer logs in; nor does the token (it was valid for its 7 days)
    assert api.get("/api/portfolios/").status_code == 401


def test_a_token_asked_for_with_the_new_password_is_not_the_one_issued_under_the_old(user):
    old, _ = _token_then_password_changed(user)
    new = APIClient().post("/api/auth/token/", {"username": user.username, "password": "N3w-passw0rd-r19!"},
                           format="json").json()["token"]
    # (a user who changed a leaked password and asked for a token got the leaked one back)
    assert new != old
    assert not Token.objects.filter(key=old).exists()
