"""Login hardening: rate limiting of the web form and the token API, and token renewal.

- An API token is valid for API_TOKEN_TTL_HOURS after it was issued (config/authentication.py);
  asking for a token again after that issues a fresh one (the old key stops working).
- Failed logins are counted in Redis per username and per client address over
  LOGIN_FAILURE_WINDOW_SECONDS; past LOGIN_MAX_FAILURES the login is refused with 429 (API) or a
  form error (web) until the window passes — before the password is even checked, so guessing
  costs the attacker the wait, not us a hash.
"""

from __future__ import annotations

import logging

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import LoginView
from django.dispatch import receiver
from django_redis import get_redis_connection
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response

from config.authentication import token_expired

logger = logging.getLogger(__name__)


# --- login rate limiting ---------------------------------------------------------------------------


def _client_address(request) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is the client's to forge unless a trusted proxy rewrites it.
    return (request.META.get("REMOTE_ADDR") if request is not None else None) or "unknown"


def _keys(username: str, address: str) -> list[str]:
    return [f"folio:login-failures:user:{(username or '').strip().lower()}", f"folio:login-failures:ip:{address}"]


def login_blocked_for(*, username: str, request) -> int:
    """Seconds the login stays refused (0: allowed). Redis down: allowed (logins must keep working)."""
    try:
        client = get_redis_connection("default")
        pipe = client.pipeline(transaction=False)
        for key in _keys(username, _client_address(request)):
            pipe.get(key)
            pipe.ttl(key)
        counts_and_ttls = pipe.execute()
    except Exception:
        logger.warning("login throttle unavailable (Redis)", exc_info=True)
        return 0
    blocked = 0
    for count, ttl in zip(counts_and_ttls[::2], counts_and_ttls[1::2], strict=True):
        if count is not None and int(count) >= settings.LOGIN_MAX_FAILURES:
            blocked = max(blocked, ttl if ttl and ttl > 0 else settings.LOGIN_FAILURE_WINDOW_SECONDS)
    return blocked


@receiver(user_login_failed)
def login_failure_record(sender, credentials, request=None, **kwargs) -> None:
    try:
        client = get_redis_connection("default")
        pipe = client.pipeline(transaction=False)
        for key in _keys(credentials.get("username", ""), _client_address(request)):
            pipe.incr(key)
            pipe.expire(key, settings.LOGIN_FAILURE_WINDOW_SECONDS, nx=True)
        pipe.execute()
    except Exception:
        logger.warning("login failure not counted (Redis)", exc_info=True)


def _wait_text(seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    return f"Too many failed logins. Try again in {minutes} minute{'s' if minutes > 1 else ''}."


class ThrottledAuthenticationForm(AuthenticationForm):
    def clean(self):
        wait = login_blocked_for(username=self.data.get("username", ""), request=self.request)
        if wait:
            raise forms.ValidationError(_wait_text(wait), code="throttled")
        return super().clean()


class ThrottledLoginView(LoginView):
    form_class = ThrottledAuthenticationForm


class ObtainExpiringAuthToken(ObtainAuthToken):
    """POST {"username","password"} → {"token"}: refused with 429 while throttled; an expired token
    is replaced by a fresh one."""

    @extend_schema(request=AuthTokenSerializer, responses={200: AuthTokenSerializer})
    def post(self, request, *args, **kwargs):
        if not hasattr(request.data, "get"):
            return Response({"non_field_errors": ["Send an object: {\"username\": …, \"password\": …}."]},
                            status=status.HTTP_400_BAD_REQUEST)
        wait = login_blocked_for(username=str(request.data.get("username", "")), request=request)
        if wait:
            return Response({"detail": _wait_text(wait)}, status=status.HTTP_429_TOO_MANY_REQUESTS,
                            headers={"Retry-After": str(wait)})
        serializer = self.get_serializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        token, created = Token.objects.get_or_create(user=user)
        if not created and token_expired(token):
            token.delete()
            token = Token.objects.create(user=user)
        return Response({"token": token.key})
