"""Content negotiation that remembers its choice per Accept header (config/negotiation.py): the same renderer
and media type as DRF's own negotiation, first time and remembered, and 406 for what DRF refuses."""

import pytest
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from config import negotiation
from config.negotiation import RememberingContentNegotiation

ACCEPTS = [None, "*/*", "application/json", "application/json; indent=4", "text/html",
           "text/html;q=0.5, application/json", "application/*", "text/*", "application/json;q=0.1, text/html;q=0.2",
           "image/png, */*;q=0.1"]


@pytest.fixture(autouse=True)
def nothing_remembered():
    negotiation._remembered.clear()
    yield
    negotiation._remembered.clear()


def _request(accept: str | None) -> Request:
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    return Request(APIRequestFactory().get("/api/portfolios/", **headers))


def _choice(negotiator, accept, renderers):
    try:
        renderer, media_type = negotiator.select_renderer(_request(accept), renderers)
    except NotAcceptable:
        return 406
    return renderers.index(renderer), media_type


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("offered", [[JSONRenderer, BrowsableAPIRenderer], [BrowsableAPIRenderer, JSONRenderer],
                                     [JSONRenderer]], ids=["json-first", "html-first", "json-only"])
def test_chooses_what_drf_chooses_first_time_and_remembered(accept, offered):
    expected = _choice(DefaultContentNegotiation(), accept, [cls() for cls in offered])
    for _ in range(2):  # the second time from what it remembered
        renderers = [cls() for cls in offered]
        assert _choice(RememberingContentNegotiation(), accept, renderers) == expected
    assert len(negotiation._remembered) == (0 if expected == 406 else 1)


def test_what_drf_refuses_is_refused_every_time_and_not_remembered():
    for _ in range(2):
        assert _choice(RememberingContentNegotiation(), "image/png", [JSONRenderer()]) == 406
    assert negotiation._remembered == {}


def test_remembers_a_bounded_number_of_headers_newest_kept():
    for number in range(negotiation.REMEMBERED_MAX + 10):
        _choice(RememberingContentNegotiation(), f"application/json;q=0.{number % 10}, x/y{number}", [JSONRenderer()])
    assert len(negotiation._remembered) == negotiation.REMEMBERED_MAX
    newest = [key[0] for key in negotiation._remembered]
    assert newest[-1].endswith(f"x/y{negotiation.REMEMBERED_MAX + 9}") and not any(
        header.endswith("x/y0") for header in newest)


@pytest.mark.django_db
def test_the_api_answers_as_each_client_asks(user):
    client = APIClient()
    client.force_authenticate(user)
    for _ in range(2):
        assert client.get("/api/portfolios/", HTTP_ACCEPT="application/json")["Content-Type"] == "application/json"
        assert client.get("/api/portfolios/", HTTP_ACCEPT="text/html")["Content-Type"].startswith("text/html")
        assert client.get("/api/portfolios/", HTTP_ACCEPT="image/png").status_code == 406
