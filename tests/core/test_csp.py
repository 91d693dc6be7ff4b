"""The Content-Security-Policy middleware whose header text is built once (core/csp.py): on every kind of answer
it writes exactly the headers django-csp's own middleware writes, and it follows the settings when they change."""

import pytest
from csp.constants import HEADER, HEADER_REPORT_ONLY, NONCE, SELF
from csp.exceptions import CSPNonceError
from csp.middleware import CSPMiddleware as LibraryCSPMiddleware
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from core.csp import CSPMiddleware

POLICY = {"DIRECTIVES": {"default-src": ["'self'"], "img-src": ["'self'", "data:"]}}
# django-csp adds its default `default-src 'self'` to a policy that names none.
REPORT_ONLY = {"default-src": "'self'", "script-src": "'self'"}


def _answer(middleware_class, *, path="/api/portfolios/", status=200, response_attrs=None, use_nonce=False):
    """The CSP headers a middleware of `middleware_class` writes on one answer, and the request it answered."""
    request = RequestFactory().get(path)

    def view(request):
        if use_nonce:
            str(request.csp_nonce)  # a template asked for the nonce
        response = HttpResponse(b"{}", status=status, content_type="application/json")
        for name, value in (response_attrs or {}).items():
            setattr(response, name, value)
        return response

    response = middleware_class(view)(request)
    written = {header: _directives(response[header]) for header in (HEADER, HEADER_REPORT_ONLY) if header in response}
    return written, request


def _directives(text: str) -> dict[str, str]:
    """A policy's directives (django-csp writes them in no fixed order)."""
    return dict(part.strip().split(" ", 1) for part in text.split(";"))


CASES = {
    "a plain answer": {},
    "a 404": {"status": 404},
    "a view adding a source": {"response_attrs": {"_csp_update": {"img-src": ["https://example.com"]}}},
    "a view replacing a directive": {"response_attrs": {"_csp_replace": {"img-src": ["https://example.com"]}}},
    "a view with its own policy": {"response_attrs": {"_csp_config": {"default-src": ["'none'"]}}},
    "a view exempt": {"response_attrs": {"_csp_exempt": True}},
    "a view exempt from report-only": {"response_attrs": {"_csp_exempt_ro": True}},
    "an excluded prefix": {"path": "/excluded/page/"},
}


def _same_as_library(case: dict) -> None:
    ours, _ = _answer(CSPMiddleware, **case)
    library, _ = _answer(LibraryCSPMiddleware, **case)
    assert ours == library


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_writes_what_django_csp_writes_with_the_product_settings(case):
    _same_as_library(case)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_writes_what_django_csp_writes_with_report_only_and_excluded_prefixes(case):
    _answer(CSPMiddleware)  # the product's policy built and kept first: the settings below must replace it
    with override_settings(CONTENT_SECURITY_POLICY={**POLICY, "EXCLUDE_URL_PREFIXES": ["/excluded/"]},
                           CONTENT_SECURITY_POLICY_REPORT_ONLY={"DIRECTIVES": {"script-src": ["'self'"]}}):
        ours, _ = _answer(CSPMiddleware, **case)
        _same_as_library(case)
    if case.get("path") == "/excluded/page/":
        assert HEADER not in ours and ours[HEADER_REPORT_ONLY] == REPORT_ONLY
    elif not case.get("response_attrs"):
        assert ours == {HEADER: {"default-src": "'self'", "img-src": "'self' data:"}, HEADER_REPORT_ONLY: REPORT_ONLY}


def test_follows_the_settings_when_they_change_and_back():
    before, _ = _answer(CSPMiddleware)
    with override_settings(CONTENT_SECURITY_POLICY=POLICY):
        assert _answer(CSPMiddleware)[0] == {HEADER: {"default-src": "'self'", "img-src": "'self' data:"}}
    assert _answer(CSPMiddleware)[0] == before
    assert before[HEADER]["frame-ancestors"] == "'none'"  # the product's own policy


def test_a_header_the_view_set_is_left_as_it_is():
    request = RequestFactory().get("/")
    response = CSPMiddleware(lambda request: HttpResponse(headers={HEADER: "default-src 'none'"}))(request)
    assert response[HEADER] == "default-src 'none'"


@override_settings(CONTENT_SECURITY_POLICY={"DIRECTIVES": {"script-src": [SELF, NONCE]}})
def test_a_nonce_used_by_the_page_is_in_its_header_and_none_can_be_asked_for_after_it_was_written():
    headers, request = _answer(CSPMiddleware, use_nonce=True)
    assert headers[HEADER] == {"default-src": "'self'", "script-src": f"'self' 'nonce-{request._csp_nonce}'"}
    # No nonce asked for: none in the header.
    assert _answer(CSPMiddleware)[0] == {HEADER: {"default-src": "'self'", "script-src": "'self'"}}
    _, request = _answer(CSPMiddleware)
    with pytest.raises(CSPNonceError):
        str(request.csp_nonce)


@override_settings(DEBUG=True)
def test_debug_pages_get_no_policy_as_with_django_csp():
    assert _answer(CSPMiddleware, status=404)[0] == {} == _answer(LibraryCSPMiddleware, status=404)[0]
    assert _answer(CSPMiddleware, status=500)[0] == {}
    assert HEADER in _answer(CSPMiddleware, status=403)[0]
