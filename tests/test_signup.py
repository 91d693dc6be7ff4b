"""Sign-up from the web: off unless FOLIO_SIGNUP; when on, the same password rules as everywhere and a
login through django-axes like any other."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db
GOOD = "plum-orchard-lantern-42"


def sign_up(username: str, password: str, *, again: str | None = None, address: str = "127.0.0.1"):
    client = Client(REMOTE_ADDR=address)
    return client, client.post("/accounts/signup/", {"username": username, "password1": password,
                                                      "password2": again or password})


def test_sign_up_is_off_by_default():
    assert Client().get("/accounts/signup/").status_code == 404
    assert sign_up("carol", GOOD)[1].status_code == 404
    assert not get_user_model().objects.filter(username="carol").exists()
    assert b"Sign up" not in Client().get("/accounts/login/").content


def test_when_on_a_new_user_signs_up_and_is_logged_in(settings):
    settings.SIGNUP_ENABLED = True
    assert b'data-testid="signup-link"' in Client().get("/accounts/login/").content
    assert Client().get("/accounts/signup/").status_code == 200
    client, response = sign_up("carol", GOOD)
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.session["_auth_user_id"] == str(get_user_model().objects.get(username="carol").pk)
    assert client.get("/").status_code == 200


@pytest.mark.parametrize(("password", "again", "message"), [
    ("short1", None, b"This password is too short."),
    ("password123", None, b"This password is too common."),
    ("83920174650", None, b"This password is entirely numeric."),
    (GOOD, GOOD + "x", b"The two password fields didn"),
])
def test_the_password_rules_are_those_of_every_password(settings, password, again, message):
    settings.SIGNUP_ENABLED = True
    _, response = sign_up("dave", password, again=again)
    assert response.status_code == 200 and message in response.content
    assert not get_user_model().objects.filter(username="dave").exists()


def test_a_taken_username_is_refused(settings, user):
    settings.SIGNUP_ENABLED = True
    _, response = sign_up(user.username, GOOD)
    assert response.status_code == 200 and b"A user with that username already exists." in response.content


def test_the_login_after_sign_up_obeys_the_lockout(settings):
    settings.SIGNUP_ENABLED = True
    settings.LOGIN_MAX_FAILURES = 3
    # someone guessed "erin" from this address until the pair was locked out
    for _ in range(3):
        Client(REMOTE_ADDR="10.0.0.9").post("/accounts/login/", {"username": "erin", "password": "guess"})
    client, response = sign_up("erin", GOOD, address="10.0.0.9")
    # the account exists, but the locked pair is not logged in until the lockout ends
    assert get_user_model().objects.filter(username="erin").exists()
    assert response.status_code == 429 and "_auth_user_id" not in client.session
    # from another address the same account logs in as usual
    other = Client(REMOTE_ADDR="10.0.0.10")
    assert other.post("/accounts/login/", {"username": "erin", "password": GOOD}).status_code == 302
