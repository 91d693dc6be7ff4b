"""Security: isolation on every portfolio route, staff-only routes, CSRF, session and token expiry,
login rate limiting, deploy checks, Flower's auth, and provider URLs that users cannot steer."""

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from portfolio.models import Portfolio, Transaction
from prices.models import PriceHistory
from prices.providers.base import UnknownSymbolError
from prices.providers.yahoo import YahooProvider
from tests.factories import InstrumentFactory, PriceFactory, TransactionFactory
from tests.stubs import StubServer, json_response

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("get", "post", "put", "patch", "delete")


def routes_with(parameter: str) -> list[str]:
    """Every URL pattern of the project that takes `parameter`, as a format string."""
    found = []

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern) and parameter in str(pattern.pattern):
                found.append("/" + prefix + str(pattern.pattern))

    walk(get_resolver().url_patterns)
    return sorted(found)


def portfolio_routes() -> list[str]:
    """Every URL pattern of the project that takes a portfolio id."""
    return routes_with("<int:portfolio_id>")


def instrument_routes() -> list[str]:
    """Every URL pattern of the project that names an instrument by its symbol."""
    return routes_with("<str:symbol>")


def fill(route: str, portfolio_id: int, transaction_id: int) -> str:
    return route.replace("<int:portfolio_id>", str(portfolio_id)).replace("<int:transaction_id>", str(transaction_id))


@pytest.mark.django_db
def test_there_are_portfolio_routes_to_check():
    routes = portfolio_routes()
    assert "/api/portfolios/<int:portfolio_id>/transactions/" in routes
    assert "/portfolios/<int:portfolio_id>/transactions/import/" in routes
    assert len(routes) >= 14


@pytest.mark.django_db
def test_every_portfolio_route_answers_404_for_another_users_portfolio(api, user, foreign_portfolio):
    foreign_tx = TransactionFactory(portfolio=foreign_portfolio)
    web = Client()
    web.force_login(user)
    for route in portfolio_routes():
        url = fill(route, foreign_portfolio.pk, foreign_tx.pk)
        client = api if route.startswith("/api/") else web
        for method in METHODS:
            status = getattr(client, method)(url).status_code
            assert status in (404, 405), f"{method.upper()} {url} answered {status}"
    assert Transaction.objects.filter(portfolio=foreign_portfolio).count() == 1
    assert Portfolio.objects.filter(pk=foreign_portfolio.pk).exists()


@pytest.mark.django_db
def test_every_instrument_route_answers_404_for_an_instrument_the_user_has_no_reason_to_see(
        api, user, other_user, foreign_portfolio):
    routes = instrument_routes()
    assert {"/api/instruments/<str:symbol>/prices/", "/instruments/<str:symbol>/"} <= set(routes)
    # another user's holding (its prices would tell what they hold) and another user's manual instrument
    held = InstrumentFactory(symbol="THEIRS")
    TransactionFactory(portfolio=foreign_portfolio, instrument=held)
    PriceFactory(instrument=held)
    own = InstrumentFactory(symbol="MINE", provider="manual", owner=other_user)
    TransactionFactory(portfolio=foreign_portfolio, instrument=own)
    web = Client()
    web.force_login(user)
    for route in routes:
        for symbol in ("THEIRS", "MINE"):
            url = route.replace("<str:symbol>", symbol)
            client = api if route.startswith("/api/") else web
            for method in METHODS:
                if client is api:  # with a body a price entry would accept
                    response = getattr(client, method)(url, [{"date": "2024-01-02", "close": "1"}], format="json")
                else:
                    response = getattr(client, method)(url)
                assert response.status_code in (404, 405), f"{method.upper()} {url} answered {response.status_code}"
    assert PriceHistory.objects.filter(instrument=own).count() == 0
    assert PriceHistory.objects.get(instrument=held).close == 100


@pytest.mark.django_db
def test_every_portfolio_route_refuses_anonymous_users(portfolio):
    tx = TransactionFactory(portfolio=portfolio)
    for route in portfolio_routes():
        url = fill(route, portfolio.pk, tx.pk)
        for method in METHODS:
            response = getattr(Client(), method)(url)
            if route.startswith("/api/"):
                assert response.status_code in (401, 405), f"{method.upper()} {url}: {response.status_code}"
            else:
                assert response.status_code in (302, 405), f"{method.upper()} {url}: {response.status_code}"
                if response.status_code == 302:
                    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/monitoring/", "/admin/", "/api/monitoring/events/", "/api/monitoring/jobs/"])
def test_staff_only_routes_refuse_users(user, url):
    web = Client()
    web.force_login(user)
    assert web.get(url).status_code in (302, 403)


@pytest.mark.django_db
def test_forms_require_csrf(user, portfolio):
    web = Client(enforce_csrf_checks=True)
    web.force_login(user)
    body = {"symbol": "AAPL", "type": "BUY", "date": "2024-01-02", "quantity": "1", "price": "1", "currency": "USD"}
    assert web.post(f"/portfolios/{portfolio.pk}/transactions/", body).status_code == 403
    # session-authenticated API calls need the token too
    assert web.post(f"/api/portfolios/{portfolio.pk}/transactions/", body).status_code == 403
    assert not Transaction.objects.exists()


@pytest.mark.django_db
def test_an_expired_session_is_sent_to_log_in(user):
    web = Client()
    web.force_login(user)
    assert web.get("/portfolios/").status_code == 200
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    response = web.get("/portfolios/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_an_expired_token_is_refused_and_renewed(user, settings):
    settings.API_TOKEN_TTL_HOURS = 1
    client = APIClient()
    old = client.post("/api/auth/token/", {"username": "alice", "password": "correct-horse-battery"},
                      format="json").json()["token"]
    Token.objects.filter(key=old).update(created=timezone.now() - timedelta(hours=2))
    client.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    refused = client.get("/api/portfolios/")
    assert refused.status_code == 401 and "expired" in refused.json()["detail"]
    new = APIClient().post("/api/auth/token/", {"username": "alice", "password": "correct-horse-battery"},
                           format="json").json()["token"]
    assert new != old
    client.credentials(HTTP_AUTHORIZATION=f"Token {new}")
    assert client.get("/api/portfolios/").status_code == 200


@pytest.mark.django_db
def test_token_logins_are_rate_limited(user, settings):
    settings.LOGIN_MAX_FAILURES = 3
    client = APIClient()
    for _ in range(3):
        assert client.post("/api/auth/token/", {"username": "alice", "password": "guess"}, format="json") \
            .status_code == 400
    blocked = client.post("/api/auth/token/", {"username": "alice", "password": "correct-horse-battery"},
                          format="json")
    assert blocked.status_code == 429
    assert "Too many failed logins" in blocked.json()["detail"]
    assert 0 < int(blocked["Retry-After"]) <= settings.LOGIN_FAILURE_WINDOW_SECONDS


@pytest.mark.django_db
def test_web_logins_are_rate_limited_per_user_and_per_address(user, settings, django_user_model):
    settings.LOGIN_MAX_FAILURES = 3
    django_user_model.objects.create_user("bob", password="bob-password-1")
    web = Client(REMOTE_ADDR="10.9.8.7")
    for _ in range(3):
        wrong = web.post("/accounts/login/", {"username": "alice", "password": "x"})
        assert b"Please enter a correct username and password" in wrong.content
    refused = web.post("/accounts/login/", {"username": "alice", "password": "correct-horse-battery"})
    assert refused.status_code == 200 and b"Too many failed logins" in refused.content
    # the same address guessing another account is refused too
    other = web.post("/accounts/login/", {"username": "bob", "password": "bob-password-1"})
    assert b"Too many failed logins" in other.content
    # another address can still log in to another account
    elsewhere = Client(REMOTE_ADDR="10.1.1.1").post("/accounts/login/",
                                                    {"username": "bob", "password": "bob-password-1"})
    assert elsewhere.status_code == 302


def test_deploy_checks_pass_with_production_settings():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(DJANGO_DEBUG="0", DJANGO_SECRET_KEY="k" * 20 + "-production-secret-from-the-environment-0123456789",
               DJANGO_ALLOWED_HOSTS="folio.example", DJANGO_SETTINGS_MODULE="config.settings")
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_flower_refuses_to_start_without_basic_auth():
    env = {k: v for k, v in os.environ.items() if k != "FLOWER_BASIC_AUTH"}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}"
    result = subprocess.run(["bin/flower"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "FLOWER_BASIC_AUTH" in result.stderr


def test_a_symbol_cannot_steer_a_provider_request_elsewhere():
    """Provider URLs come from settings; a URL-like symbol only ever becomes an encoded path segment."""
    stub = StubServer()
    with stub.running():
        stub.route("/v8/finance/chart/HTTP://127.0.0.2:9/STEAL", json_response(
            '{"chart":{"result":null,"error":{"code":"Not Found","description":"No data found"}}}', status=404))
        provider = YahooProvider(base_url=stub.url, timeout=2)
        with pytest.raises(UnknownSymbolError, match="No data found"):
            provider.daily_history("HTTP://127.0.0.2:9/STEAL", date(2024, 1, 1), date(2024, 1, 31))
        (request,) = stub.requests
        assert request.raw_path.startswith("/v8/finance/chart/HTTP%3A%2F%2F127.0.0.2%3A9%2FSTEAL?")


@pytest.mark.django_db
def test_a_missing_api_path_answers_json(api):
    response = api.get("/api/portfolios/abc/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert Client().get("/no/such/page/").status_code == 404
