"""Fixtures of the reliability suites (fault, fuzz and soak). See docs/RELIABILITY.md."""

from collections.abc import Callable

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


@pytest.fixture
def api_client_for() -> Callable[..., APIClient]:
    """An API client authenticated with a fresh token of the given user, as scripts use the API."""

    def make(user) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        return client

    return make


@pytest.fixture
def api_token_for() -> Callable[..., str]:
    """A fresh API token key of the given user, for requests to a live server."""

    def make(user) -> str:
        return Token.objects.create(user=user).key

    return make
