"""Postgres unreachable: the web tier answers 503 with Retry-After — JSON under /api/, a plain page elsewhere —
never a 500. The real web server whose DATABASE_URL is a port on which nothing listens (connection refused), as
after Postgres stopped; and what handler500 answers for other errors (JSON under /api/ too)."""

import json
import os
import re
from collections.abc import Iterator

import pytest
import requests
from django.db import InterfaceError, OperationalError
from django.test import RequestFactory

from config.exceptions import server_error
from tests.reliability.procs import WebServer, child_env, free_port

DETAIL = {"detail": "Temporarily unavailable: the database cannot be reached."}


@pytest.fixture(scope="module")
def web_without_database(tmp_path_factory) -> Iterator[str]:
    # the test Redis (config/settings_test.py put its URL in REDIS_URL): only the database is missing
    env = child_env(redis_url=os.environ["REDIS_URL"],
                    database_url=f"postgres://postgres@127.0.0.1:{free_port()}/folio",
                    DJANGO_SECURE_COOKIES="0")  # plain HTTP on loopback: the CSRF cookie must come back
    with WebServer(env=env, log_dir=tmp_path_factory.mktemp("web"), workers=1, threads=2).start() as server:
        yield server.url


def assert_json_503(response: requests.Response) -> None:
    assert (response.status_code, response.headers["Content-Type"], response.json()) == (
        503, "application/json", DETAIL)
    assert response.headers["Retry-After"] == "10"


def test_the_api_answers_json_503_with_retry_after(web_without_database):
    api = web_without_database + "/api"
    token = {"Authorization": "Token 0123456789abcdef0123456789abcdef01234567"}
    assert_json_503(requests.get(f"{api}/portfolios/", headers=token, timeout=10))
    assert_json_503(requests.patch(f"{api}/portfolios/1/", json={"name": "x"}, headers=token, timeout=10))
    # the login itself, unauthenticated
    assert_json_503(requests.post(f"{api}/auth/token/", json={"username": "alice", "password": "x"}, timeout=10))
    # the dashboard's reads with a token: their owner probe, made before authentication, meets the outage first
    for endpoint in ("dashboard-initial-data", "dashboard-holdings-data", "dashboard-chart-data"):
        assert_json_503(requests.get(f"{api}/{endpoint}/1/", headers=token, timeout=10))
    # a session cookie (the dashboard's own calls): the session is in the database too
    assert_json_503(requests.get(f"{api}/dashboard-initial-data/1/", cookies={"sessionid": "x" * 32}, timeout=10))


def test_pages_answer_a_plain_503_page(web_without_database):
    page = requests.get(f"{web_without_database}/portfolios/", cookies={"sessionid": "x" * 32}, timeout=10)
    assert (page.status_code, page.headers["Content-Type"], page.headers["Retry-After"]) == (
        503, "text/html; charset=utf-8", "10")
    assert "<h1>Temporarily unavailable</h1>" in page.text and "cannot reach its database" in page.text

    # the login form: its page needs no database, its POST does
    session = requests.Session()
    form = session.get(f"{web_without_database}/accounts/login/", timeout=10)
    assert form.status_code == 200
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)[1]
    login = session.post(f"{web_without_database}/accounts/login/", timeout=10,
                         data={"username": "alice", "password": "x", "csrfmiddlewaretoken": csrf},
                         headers={"Referer": f"{web_without_database}/accounts/login/"})
    assert (login.status_code, login.headers["Retry-After"]) == (503, "10")
    assert "<h1>Temporarily unavailable</h1>" in login.text


def answer_to(exception: Exception, path: str):
    """What handler500 answers for `exception` raised while serving `path` (Django calls it in its except)."""
    try:
        raise exception
    except Exception:
        return server_error(RequestFactory().get(path))


def test_handler500_answers_503_for_the_database_and_json_500_under_the_api():
    database = answer_to(InterfaceError("connection already closed"), "/api/portfolios/")
    assert (database.status_code, json.loads(database.content), database["Retry-After"]) == (503, DETAIL, "10")
    assert answer_to(OperationalError("the database system is shutting down"), "/").status_code == 503
    api = answer_to(ValueError("a bug"), "/api/portfolios/")
    assert (api.status_code, json.loads(api.content)) == (500, {"detail": "Server error."})
    page = answer_to(ValueError("a bug"), "/portfolios/")
    assert page.status_code == 500 and b"Server Error (500)" in page.content
