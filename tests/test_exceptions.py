"""config/exceptions.py: every 400 names each bad field with a list of messages ({"field": ["message"]}, as
docs/api.md documents), however the view raised it."""

import pytest

from tests.factories import InstrumentFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("path", "field"), [
    ("/api/portfolios/{pk}/performance/?range=XYZ", "range"),
    ("/api/dashboard-chart-data/{pk}/?range=2W", "range"),
    ("/api/portfolios/{pk}/transactions/export/?format=xml", "format"),
    ("/api/instruments/KO/prices/?start=2024-02-01&end=2024-01-01", "start"),
])
def test_a_bad_query_parameter_is_named_with_a_list_of_messages(api, portfolio, path, field):
    InstrumentFactory(symbol="KO")
    response = api.get(path.format(pk=portfolio.pk))
    assert response.status_code == 400
    errors = response.json()[field]
    assert isinstance(errors, list) and len(errors) == 1 and len(errors[0]) > 10, response.json()
