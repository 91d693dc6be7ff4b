"""django-csp's middleware with the policy's text built once per process rather than once per answer.

Building the header from the settings (a dataclass turned into a dict, the directives joined) cost a fifth
of the framework's own CPU per API request (the bench's framework floor), for a text that is the same on every
answer. An answer from a view that sets its own policy (django-csp's decorators) or that used a nonce still
has its header built by django-csp itself; settings changed at run time (tests) rebuild the text.
"""

from functools import cache

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as LibraryCSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

# What django-csp's decorators set on a response to give it a policy of its own.
_PER_VIEW = ("_csp_config", "_csp_update", "_csp_replace", "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro")
# Answers django-csp leaves without a policy while DEBUG is on (its debug pages).
_DEBUG_EXEMPT_STATUSES = (404, 500)


@cache
def _policies() -> tuple[tuple[str, str, str, tuple[str, ...]], ...]:
    """(header, text, attribute exempting a response, path prefixes excluded) for the enforced policy and the
    report-only one, each only if the settings give it a text — built by django-csp from the settings."""
    found = []
    for header, setting, exempt, report_only in ((HEADER, "CONTENT_SECURITY_POLICY", "_csp_exempt", False),
                                                 (HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY",
                                                  "_csp_exempt_ro", True)):
        text = build_policy(report_only=report_only)
        if text:
            excluded = tuple((getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES", None) or ())
            found.append((header, text, exempt, excluded))
    return tuple(found)


@receiver(setting_changed)
def _policies_forget(*, setting, **_) -> None:
    if setting in ("CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY"):
        _policies.cache_clear()


class CSPMiddleware(LibraryCSPMiddleware):
    def process_response(self, request, response):
        if (getattr(request, "_csp_nonce", None) is not None
                or any(getattr(response, name, None) is not None for name in _PER_VIEW)):
            return super().process_response(request, response)
        if response.status_code in _DEBUG_EXEMPT_STATUSES and settings.DEBUG:
            return response
        for header, text, exempt, excluded in _policies():
            if (header not in response and getattr(response, exempt, False) is False
                    and not request.path_info.startswith(excluded)):
                response[header] = text
        # As django-csp does: a nonce asked for after the header was written could not be in it.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response
