"""Sign-up from the web, when FOLIO_SIGNUP is on: Django's user-creation form (AUTH_PASSWORD_VALIDATORS,
as for every password), then a login through authenticate(), so django-axes sees it like any other."""

from django.conf import settings
from django.contrib.auth import authenticate, login
from django.contrib.auth.forms import UserCreationForm
from django.http import Http404
from django.shortcuts import redirect, render


def signup(request):
    if not settings.SIGNUP_ENABLED:
        raise Http404("Sign-up is off.")
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        user = authenticate(request, username=user.get_username(), password=form.cleaned_data["password1"])
        if user is not None:
            login(request, user)
            return redirect(settings.LOGIN_REDIRECT_URL)
        return redirect(settings.LOGIN_URL)
    return render(request, "registration/signup.html", {"form": form})


def signup_context(request) -> dict:
    """A context processor: the login page offers sign-up only when it is on."""
    return {"signup_enabled": settings.SIGNUP_ENABLED}
