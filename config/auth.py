"""Login hardening: one lockout for every login (web form, admin, token API), and token renewal.

- An API token is valid for API_TOKEN_TTL_HOURS after it was issued (config/authentication.py);
  asking for a token again after that issues a fresh one (the old key stops working).
- django-axes counts failed logins per (username, client address) pair (settings: AXES_*). After
  LOGIN_MAX_FAILURES, each within LOGIN_FAILURE_WINDOW_SECONDS of the next, that pair is refused until
  the window has passed since its last failure — before the password is even checked, so guessing costs
  the attacker the wait, not us a hash, and the right password does not get in either. Another address,
  or another username from the same address, is not affected: nobody can lock a victim out from elsewhere.
- Refused: the token API answers 429 with Retry-After and a JSON `detail`; the web and admin forms a
  429 page saying how long to wait (`lockout_response`, called by axes' middleware).
"""

from __future__ import annotations

import math
from datetime import timedelta

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.shortcuts import render
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings

from config.authentication import token_expired

# --- what django-axes asks for (AXES_FAILURE_LIMIT, AXES_COOLOFF_TIME, AXES_CLIENT_IP_CALLABLE) -------------


def login_failure_limit(request, credentials) -> int:
    return settings.LOGIN_MAX_FAILURES


def login_cool_off(request) -> timedelta:
    return timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)


def client_address(request) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is the client's to forge unless a trusted proxy rewrites it.
    return request.META.get("REMOTE_ADDR") or None


# What axes stores of a username (AccessAttempt.username, varchar(255)): longer ones are counted by their first 255
# characters, not refused by the database (a 500 for anyone typing a long name; no account's name is that long).
AXES_USERNAME_LENGTH = 255


def login_username(request, credentials: dict | None) -> str | None:
    """The username a login's failures are counted under (AXES_USERNAME_CALLABLE): axes' own choice (the
    credentials, else the form's field), cut to what it stores."""
    if credentials:
        username = credentials.get(settings.AXES_USERNAME_FORM_FIELD)
    else:
        username = getattr(request, "data", request.POST).get(settings.AXES_USERNAME_FORM_FIELD)
    return username[:AXES_USERNAME_LENGTH] if isinstance(username, str) else username


def lockout_seconds_left(request, credentials: dict | None) -> int:
    """Seconds until this request's (username, address) pair may log in again: the lockout ends when the
    failures still inside the window fall below the limit, i.e. when the one that reached it leaves."""
    handler = AxesProxyHandler.get_implementation()
    AxesProxyHandler.update_request(request)
    limit = login_failure_limit(request, credentials)
    window = login_cool_off(request)
    now = timezone.now()
    left = 0.0
    for attempts in handler.get_user_attempts(request, credentials):
        failures = 0
        for attempt_time, count in attempts.order_by("-attempt_time").values_list("attempt_time",
                                                                                 "failures_since_start"):
            failures += count
            if failures >= limit:
                left = max(left, (attempt_time + window - now).total_seconds())
                break
    return max(1, math.ceil(left))


def _wait_text(seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    return f"Too many failed logins. Try again in {minutes} minute{'s' if minutes > 1 else ''}."


def lockout_response(request, original_response=None, credentials=None):
    """The page the web form and the admin answer while a pair is locked out (AXES_LOCKOUT_CALLABLE)."""
    seconds = lockout_seconds_left(request, credentials)
    response = render(request, "registration/locked_out.html", {"message": _wait_text(seconds)},
                      status=status.HTTP_429_TOO_MANY_REQUESTS)
    response["Retry-After"] = str(seconds)
    return response


# --- the token API -----------------------------------------------------------------------------------------


class ObtainExpiringAuthToken(ObtainAuthToken):
    """POST {"username","password"} → {"token"}: refused with 429 while locked out; an expired token
    is replaced by a fresh one."""

    # ObtainAuthToken names its parsers itself: ours, so a deeply nested body is a 400 here too.
    parser_classes = api_settings.DEFAULT_PARSER_CLASSES

    @extend_schema(request=AuthTokenSerializer, responses={
        200: AuthTokenSerializer,
        429: inline_serializer("LoginLockedOut", {"detail": serializers.CharField()}),
    })
    def post(self, request, *args, **kwargs):
        if not hasattr(request.data, "get"):
            return Response({"non_field_errors": ["Send an object: {\"username\": …, \"password\": …}."]},
                            status=status.HTTP_400_BAD_REQUEST)
        username = request.data.get("username")
        if isinstance(username, str) and "\x00" in username:
            # Refused before axes looks the pair up (Postgres refuses NUL in text: a 500), with the serializer's words.
            return Response({"username": ["Null characters are not allowed."]}, status=status.HTTP_400_BAD_REQUEST)
        credentials = {"username": username if isinstance(username, str) else None}
        if not AxesProxyHandler.is_allowed(request, credentials):
            return self._locked_out(request, credentials)
        serializer = self.get_serializer(data=request.data, context={"request": request})
        if not serializer.is_valid():
            # This failure may be the one that reached the limit (axes flags the request).
            if getattr(request, "axes_locked_out", False):
                return self._locked_out(request, credentials)
            raise ValidationError(serializer.errors)
        user = serializer.validated_data["user"]
        # A token issued is a login: last_login is set and axes clears this pair's failures, as for the form.
        user_logged_in.send(sender=user.__class__, request=request, user=user)
        token, created = Token.objects.get_or_create(user=user)
        if not created and token_expired(token):
            token.delete()
            token = Token.objects.create(user=user)
        return Response({"token": token.key})

    @staticmethod
    def _locked_out(request, credentials: dict) -> Response:
        seconds = lockout_seconds_left(request, credentials)
        return Response({"detail": _wait_text(seconds)}, status=status.HTTP_429_TOO_MANY_REQUESTS,
                        headers={"Retry-After": str(seconds)})
