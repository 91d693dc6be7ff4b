"""Security: isolation on every portfolio route, staff-only routes, CSRF, session and token expiry,
one login lockout for every login surface, password reset only with mail, the Content-Security-Policy,
deploy checks, Flower's auth, and provider URLs that users cannot steer."""

import importlib
import os
import re
import socket
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.conf import settings as settings_module
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core import mail
from django.db.models import F
from django.test import Client
from django.urls import URLPattern, URLResolver, clear_url_caches, get_resolver
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

import config.urls
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
    return routes_with("<path:symbol>")


def fill(route: str, portfolio_id: int, tx) -> str:
    """The route for the portfolio and one of its transactions (and that transaction's account)."""
    return (route.replace("<int:portfolio_id>", str(portfolio_id)).replace("<int:transaction_id>", str(tx.pk))
            .replace("<int:account_id>", str(tx.account_id)))


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
        url = fill(route, foreign_portfolio.pk, foreign_tx)
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
    assert {"/api/instruments/<path:symbol>/prices/", "/instruments/<path:symbol>/"} <= set(routes)
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
            url = route.replace("<path:symbol>", symbol)
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
        url = fill(route, portfolio.pk, tx)
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


PASSWORD = "correct-horse-battery"  # tests/factories.py


def token_login(password: str, *, username: str = "alice", address: str = "127.0.0.1"):
    return APIClient(REMOTE_ADDR=address).post("/api/auth/token/", {"username": username, "password": password},
                                               format="json")


def web_login(password: str, *, username: str = "alice", address: str = "127.0.0.1", url: str = "/accounts/login/"):
    client = Client(REMOTE_ADDR=address)
    return client, client.post(url, {"username": username, "password": password})


def logged_in_as(client: Client) -> str | None:
    user_id = client.session.get("_auth_user_id")
    return get_user_model().objects.get(pk=user_id).username if user_id else None


@pytest.mark.django_db
def test_token_logins_are_locked_out_with_429_and_retry_after(user, settings):
    settings.LOGIN_MAX_FAILURES = 3
    wrong = [token_login("guess") for _ in range(3)]
    assert [response.status_code for response in wrong] == [400, 400, 429]  # the third failure locks
    assert wrong[0].json() == {"non_field_errors": ["Unable to log in with provided credentials."]}
    refused = token_login(PASSWORD)
    assert refused.status_code == 429
    assert refused.json() == {"detail": "Too many failed logins. Try again in 15 minutes."}
    assert settings.LOGIN_FAILURE_WINDOW_SECONDS - 5 <= int(refused["Retry-After"]) <= \
        settings.LOGIN_FAILURE_WINDOW_SECONDS
    assert not Token.objects.filter(user=user).exists()


@pytest.mark.django_db
def test_twenty_wrong_admin_passwords_lock_the_admin_login_and_every_other_login(user, settings):
    user.is_staff = True
    user.save()
    for _ in range(20):
        web_login("guess", url="/admin/login/")
    client, refused = web_login(PASSWORD, url="/admin/login/")
    assert refused.status_code == 429
    assert b"Too many failed logins. Try again in 15 minutes." in refused.content
    assert 0 < int(refused["Retry-After"]) <= settings.LOGIN_FAILURE_WINDOW_SECONDS
    assert logged_in_as(client) is None
    assert client.get("/admin/").status_code == 302  # to the admin's login page
    # one lockout for the pair, whichever door it knocks on
    assert token_login(PASSWORD).status_code == 429
    client, web = web_login(PASSWORD)
    assert web.status_code == 429 and logged_in_as(client) is None


@pytest.mark.django_db
def test_failures_on_every_login_surface_count_together(user, settings):
    settings.LOGIN_MAX_FAILURES = 3
    user.is_staff = True
    user.save()
    assert web_login("guess")[1].status_code == 200  # the form again, with its error
    assert web_login("guess", url="/admin/login/")[1].status_code == 200
    assert token_login("guess").status_code == 429  # the third failure, on the third surface
    client, refused = web_login(PASSWORD, url="/admin/login/")
    assert refused.status_code == 429 and logged_in_as(client) is None


@pytest.mark.django_db
def test_an_attacker_elsewhere_cannot_lock_a_user_out(user, settings, django_user_model):
    """The pair (username, address) is locked, not the username, not the address."""
    django_user_model.objects.create_user("bob", password="bob-password-1")
    for _ in range(settings.LOGIN_MAX_FAILURES + 3):
        web_login("guess", address="203.0.113.66")
        token_login("guess", address="203.0.113.66")
    # the attacker's pair is locked...
    assert token_login(PASSWORD, address="203.0.113.66").status_code == 429
    # ...alice from her own address is not, on any surface
    client, web = web_login(PASSWORD, address="198.51.100.7")
    assert web.status_code == 302 and logged_in_as(client) == "alice"
    assert token_login(PASSWORD, address="198.51.100.7").status_code == 200
    # and the attacker's address is not locked for other usernames (a shared NAT keeps working)
    client, other = web_login("bob-password-1", username="bob", address="203.0.113.66")
    assert other.status_code == 302 and logged_in_as(client) == "bob"


@pytest.mark.django_db
def test_the_web_form_says_how_long_to_wait_and_the_lockout_ends_after_the_window(user, settings):
    from axes.models import AccessAttempt  # noqa: PLC0415 (an installed app only with the lockout)

    settings.LOGIN_MAX_FAILURES = 3
    for _ in range(2):
        _, wrong = web_login("guess")
        assert wrong.status_code == 200 and b"Please enter a correct username and password" in wrong.content
    _, locking = web_login("guess")
    assert locking.status_code == 429
    assert b"Too many failed logins. Try again in 15 minutes." in locking.content
    # refused attempts do not extend the lockout: Retry-After only counts down
    first = int(web_login(PASSWORD)[1]["Retry-After"])
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(seconds=600))
    client, later = web_login(PASSWORD)
    assert later.status_code == 429 and b"Try again in 5 minutes." in later.content
    assert first - 600 - 5 <= int(later["Retry-After"]) <= first - 600
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(seconds=300))
    client, allowed = web_login(PASSWORD)
    assert allowed.status_code == 302 and logged_in_as(client) == "alice"


@pytest.mark.django_db
def test_a_successful_login_clears_the_pairs_failures(user, settings):
    settings.LOGIN_MAX_FAILURES = 3
    for _ in range(2):
        token_login("guess")
    assert token_login(PASSWORD).status_code == 200
    assert [token_login("guess").status_code for _ in range(3)] == [400, 400, 429]


@pytest.mark.django_db
def test_logins_keep_working_and_stay_locked_out_while_redis_is_down(user, settings):
    settings.LOGIN_MAX_FAILURES = 3
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{closed_port()}/0"}}
    assert token_login(PASSWORD).status_code == 200
    assert [token_login("guess").status_code for _ in range(3)] == [400, 400, 429]
    assert token_login(PASSWORD).status_code == 429


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- password reset ------------------------------------------------------------------------------------------


@pytest.fixture
def reloaded_urls():
    """Reloads the URL configuration after the test has changed the settings it reads, and again after."""

    def reload():
        importlib.reload(config.urls)
        clear_url_caches()

    yield reload
    reload()


@pytest.mark.django_db
def test_password_reset_is_not_mounted_without_mail(user):
    assert settings_module.PASSWORD_RESET_ENABLED is False
    for url in ("/accounts/password_reset/", "/accounts/password_reset/done/", "/accounts/reset/done/",
                "/accounts/reset/MQ/set-password/"):
        assert Client().get(url).status_code == 404, url
    assert Client().post("/accounts/password_reset/", {"email": "alice@example.com"}).status_code == 404
    assert not mail.outbox


@pytest.mark.django_db
def test_password_reset_mails_a_link_when_mail_is_configured(user, settings, reloaded_urls):
    settings.PASSWORD_RESET_ENABLED = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    reloaded_urls()
    user.email = "alice@example.com"
    user.save()
    response = Client().post("/accounts/password_reset/", {"email": "alice@example.com"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password_reset/done/"
    (message,) = mail.outbox
    assert message.to == ["alice@example.com"]
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", message.body).group(1)
    assert Client().get(link, follow=True).status_code == 200


# --- content security policy ---------------------------------------------------------------------------------

CSP = {"default-src": "'self'", "script-src": "'self'", "style-src": "'self'", "img-src": "'self' data:",
       "connect-src": "'self'", "font-src": "'self'", "object-src": "'none'", "base-uri": "'self'",
       "form-action": "'self'", "frame-ancestors": "'none'"}


def csp_directives(header: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/accounts/login/", "/", "/portfolios/", "/monitoring/", "/api/docs/",
                                 "/api/docs/?script=", "/admin/", "/api/portfolios/", "/no/such/page/",
                                 "/static/js/forms.js"])
def test_every_answer_carries_the_content_security_policy(user, url):
    user.is_staff = True
    user.save()
    web = Client()
    web.force_login(user)
    response = web.get(url)
    assert response.status_code in (200, 404), (url, response.status_code)
    assert csp_directives(response["Content-Security-Policy"]) == CSP


INLINE = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE),
    "inline style element": re.compile(r"<style\b", re.IGNORECASE),
    "style attribute": re.compile(r"\sstyle\s*=", re.IGNORECASE),
    "event-handler attribute": re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),
    "javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
}


def test_no_template_has_what_the_content_security_policy_refuses():
    found = [f"{path.relative_to(ROOT)}: {what}" for path in sorted((ROOT / "templates").rglob("*.html"))
             for what, pattern in INLINE.items()
             if pattern.search(re.sub(r"{% comment %}.*?{% endcomment %}", "", path.read_text(), flags=re.DOTALL))]
    assert not found
    # scripts only ever set styles as properties (allowed), never as attributes (refused): no setAttribute
    # ("style"…) and no attribute map with a CSS declaration ({style: "width: 2px"}; Intl's {style: "currency"}
    # is no CSS)
    scripts = {path.name: path.read_text() for path in (ROOT / "static" / "js").glob("*.js")}
    refused = r"""setAttribute\(\s*["']style|\bstyle:\s*["'`][^"'`]*:"""
    assert not [name for name, text in scripts.items() if re.search(refused, text)]


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


@pytest.mark.django_db
def test_a_username_longer_than_axes_stores_is_a_failed_login_not_a_500(settings):
    settings.LOGIN_MAX_FAILURES = 3
    long = "a" * 300
    assert token_login("guess", username=long).status_code == 400
    assert web_login("guess", username=long)[1].status_code == 200  # the form again, with its error
    # counted as any name is (by the part axes keeps), on every surface: the third failure locks the pair
    assert web_login("guess", username=long, url="/admin/login/")[1].status_code == 429
    assert token_login("guess", username="a" * 255).status_code == 429
