"""The dashboard's owner check (portfolio/access.py) with every cache warm (token, answers, chart):
another user's portfolio stays 404, a deleted one is 404 at once, a new owner takes it at once, and a
version moved while Redis was away outdates the cached answers (the version is never cached)."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from charts.services import chart_data_generate
from portfolio.access import PortfolioAccess, portfolio_access_get
from portfolio.models import Portfolio
from tests.factories import TransactionFactory

pytestmark = pytest.mark.django_db

ENDPOINTS = ["dashboard-initial-data", "dashboard-holdings-data", "dashboard-chart-data"]


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def warm(user, portfolio):
    """Alice's dashboard with every cache filled: token, both answers, a current chart."""
    TransactionFactory(portfolio=portfolio)
    chart_data_generate(portfolio_id=portfolio.pk)
    client = _client(user)
    for endpoint in ENDPOINTS:
        assert client.get(f"/api/{endpoint}/{portfolio.pk}/").status_code == 200
    return client


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_another_users_portfolio_is_404_with_every_cache_warm(warm, other_user, portfolio, endpoint):
    theirs = _client(other_user)
    assert theirs.get(f"/api/{endpoint}/{portfolio.pk}/").status_code == 404
    assert warm.get(f"/api/{endpoint}/{portfolio.pk}/").status_code == 200


def test_no_token_is_401_with_every_cache_warm(warm, portfolio):
    for endpoint in ENDPOINTS:
        assert APIClient().get(f"/api/{endpoint}/{portfolio.pk}/").status_code == 401


def test_a_deleted_portfolio_is_404_at_once(warm, portfolio):
    pk = portfolio.pk
    assert warm.delete(f"/api/portfolios/{pk}/").status_code == 204
    for endpoint in ENDPOINTS:
        assert warm.get(f"/api/{endpoint}/{pk}/").status_code == 404


def test_a_portfolio_given_to_another_owner_changes_hands_at_once(warm, user, other_user, portfolio):
    portfolio.owner = other_user
    portfolio.save()
    for endpoint in ENDPOINTS:
        assert warm.get(f"/api/{endpoint}/{portfolio.pk}/").status_code == 404
        assert _client(other_user).get(f"/api/{endpoint}/{portfolio.pk}/").status_code == 200


def test_the_version_is_read_from_postgres_every_time(warm, user, portfolio):
    # as a write while Redis was away leaves it (a trade: the chart's history version moves too)
    Portfolio.objects.filter(pk=portfolio.pk).update(data_version=7, history_version=3)
    assert portfolio_access_get(user_id=user.pk, portfolio_id=portfolio.pk) == PortfolioAccess(portfolio.pk,
                                                                                              user.pk, 7, 3)
    assert warm.get(f"/api/dashboard-chart-data/{portfolio.pk}/").json()["outdated"] is True
    assert portfolio_access_get(user_id=None, portfolio_id=portfolio.pk) is None
