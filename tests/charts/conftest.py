"""Fixtures of the chart tests that read charts through the API as a user would."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.charts.factories import token_client


@pytest.fixture
def no_debounce(settings):
    """Regenerations queued at once (a module asks for it: `pytest.mark.usefixtures`)."""
    settings.CHART_DEBOUNCE_SECONDS = 0


@pytest.fixture
def owner():
    return get_user_model().objects.create_user("carol", password="x")


@pytest.fixture
def client(owner) -> APIClient:
    return token_client(owner)
