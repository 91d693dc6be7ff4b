"""Shared fixtures. Tests use real Postgres (DATABASE_URL) and real Redis (database 15)."""

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import PortfolioFactory, UserFactory


@pytest.fixture(autouse=True)
def clean_redis():
    """Every test starts with an empty Redis database (the test settings' own, never db 0)."""
    cache.clear()
    yield


@pytest.fixture
def user(db):
    return UserFactory(username="alice")


@pytest.fixture
def other_user(db):
    return UserFactory(username="mallory")


@pytest.fixture
def api(user) -> APIClient:
    """An API client authenticated as `user` with a token, as scripts use the API."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def portfolio(user):
    return PortfolioFactory(owner=user, name="Main", base_currency="USD")


@pytest.fixture
def foreign_portfolio(other_user):
    return PortfolioFactory(owner=other_user, name="Not yours")
