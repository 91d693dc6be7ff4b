"""The dashboard's cached owner and version (portfolio/access.py) against real Redis and Postgres:
another user's portfolio stays 404, a deleted one is 404 at once, a new version is seen at once,
and a late reader cannot bring an older version back."""

import pytest
from django_redis import get_redis_connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from portfolio.access import PortfolioAccess, portfolio_access_get, portfolio_access_versions_raise
from portfolio.cache import portfolio_version_bump
from portfolio.models import Portfolio

pytestmark = pytest.mark.django_db

ENDPOINTS = ["dashboard-initial-data", "dashboard-holdings-data", "dashboard-chart-data"]


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _entry(portfolio_id: int) -> dict:
    raw = get_redis_connection("default").hgetall(f"folio:portfolio:{portfolio_id}:access")
    return {k.decode(): int(v) for k, v in raw.items()}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_another_users_portfolio_is_404_with_every_cache_warm(user, other_user, portfolio, endpoint):
    mine, theirs = _client(user), _client(other_user)
    assert mine.get(f"/api/{endpoint}/{portfolio.pk}/").status_code in (200, 202)
    assert mine.get(f"/api/{endpoint}/{portfolio.pk}/").status_code in (200, 202)  # warm now
    assert _entry(portfolio.pk) == {"o": user.pk, "v": portfolio.data_version}
    assert theirs.get(f"/api/{endpoint}/{portfolio.pk}/").status_code == 404
    assert theirs.get(f"/api/{endpoint}/{portfolio.pk}/").status_code == 404


def test_a_deleted_portfolio_is_404_at_once(user, portfolio, django_capture_on_commit_callbacks):
    client, pk = _client(user), portfolio.pk
    assert client.get(f"/api/dashboard-initial-data/{pk}/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(f"/api/portfolios/{pk}/").status_code == 204
    for endpoint in ENDPOINTS:
        assert client.get(f"/api/{endpoint}/{pk}/").status_code == 404
    # A reader that read the row before the deletion cannot make it exist again.
    portfolio_access_versions_raise(rows=[PortfolioAccess(pk, user.pk, 99)])
    assert client.get(f"/api/dashboard-holdings-data/{pk}/").status_code == 404


def test_a_portfolio_given_to_another_owner_changes_hands_at_once(user, other_user, portfolio):
    mine, theirs = _client(user), _client(other_user)
    assert mine.get(f"/api/dashboard-initial-data/{portfolio.pk}/").status_code == 200
    portfolio.owner = other_user
    portfolio.save()
    assert mine.get(f"/api/dashboard-initial-data/{portfolio.pk}/").status_code == 404
    assert theirs.get(f"/api/dashboard-initial-data/{portfolio.pk}/").status_code == 200


def test_a_bump_is_seen_before_and_after_it_commits(user, portfolio, django_capture_on_commit_callbacks):
    assert portfolio_access_get(user_id=user.pk, portfolio_id=portfolio.pk).data_version == 0
    with django_capture_on_commit_callbacks(execute=True):
        portfolio_version_bump(portfolio_id=portfolio.pk)
        # Not committed yet: the entry is gone, Postgres answers (this transaction sees its own bump).
        assert _entry(portfolio.pk) == {}
    assert _entry(portfolio.pk) == {"o": user.pk, "v": 1}
    assert portfolio_access_get(user_id=user.pk, portfolio_id=portfolio.pk) == PortfolioAccess(portfolio.pk,
                                                                                              user.pk, 1)


def test_a_late_reader_never_lowers_the_cached_version(user, portfolio):
    portfolio_access_versions_raise(rows=[PortfolioAccess(portfolio.pk, user.pk, 5)])
    portfolio_access_versions_raise(rows=[PortfolioAccess(portfolio.pk, user.pk, 3)])
    assert _entry(portfolio.pk) == {"o": user.pk, "v": 5}
    assert 0 < get_redis_connection("default").ttl(f"folio:portfolio:{portfolio.pk}:access") <= 30


def test_deleting_the_owner_deletes_access_to_the_portfolio(user, portfolio, django_capture_on_commit_callbacks):
    client = _client(user)
    key = Token.objects.get(user=user).key
    assert client.get(f"/api/dashboard-initial-data/{portfolio.pk}/").status_code == 200
    pk = portfolio.pk
    with django_capture_on_commit_callbacks(execute=True):
        user.delete()
    assert not Portfolio.objects.filter(pk=pk).exists()
    assert portfolio_access_get(user_id=user.pk, portfolio_id=pk) is None
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get(f"/api/dashboard-initial-data/{pk}/").status_code == 401
