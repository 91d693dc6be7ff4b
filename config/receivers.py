"""What forgets cached token look-ups (config/authentication.py): connected in config/apps.py.

A token deleted (revoked, renewed, its user deleted) or a user saved (deactivated, made staff or not,
renamed) drops the cached entries at once and again once the write commits, so a request that read
the old row just before the commit cannot keep it cached either.
"""

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from rest_framework.authtoken.models import Token

from config.authentication import token_cache_forget


def _forget_now_and_on_commit(keys: list[str]) -> None:
    token_cache_forget(keys=keys)
    transaction.on_commit(lambda: token_cache_forget(keys=keys))


@receiver(post_delete, sender=Token, dispatch_uid="config.token_deleted")
@receiver(post_save, sender=Token, dispatch_uid="config.token_saved")
def on_token_changed(sender, instance: Token, **kwargs) -> None:
    _forget_now_and_on_commit([instance.key])


@receiver(post_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="config.user_deleted")
@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="config.user_saved")
def on_user_changed(sender, instance, **kwargs) -> None:
    if kwargs.get("created"):
        return  # a new user has no token yet
    if getattr(instance, "_password", None) is not None:
        # A new password (set_password, saved: the change form, a reset, the admin) revokes the API tokens issued
        # under the old one, as it ends the user's other sessions: a leaked token is why a password is changed.
        # Their deletion forgets them (on_token_changed); the next token asked for is a new key.
        Token.objects.filter(user_id=instance.pk).delete()
        return
    _forget_now_and_on_commit(list(Token.objects.filter(user_id=instance.pk).values_list("key", flat=True)))
