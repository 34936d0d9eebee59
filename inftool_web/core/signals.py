"""Open websockets follow their user's access: a log-out, a role or account change."""

import logging

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from .events import access_changed_on_commit

log = logging.getLogger(__name__)
User = get_user_model()


# ------------------------------------------------------------------ open sockets follow access
@receiver(user_logged_out)
def _close_sockets_of_ended_session(sender, request=None, user=None, **kwargs) -> None:
    if user is not None and request is not None:
        access_changed_on_commit(user.pk, ended_session=request.session.session_key)


@receiver(m2m_changed, sender=User.groups.through)
def _recheck_sockets_on_role_change(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if not reverse:  # user.groups.add(...)
        access_changed_on_commit(instance.pk)
    else:  # group.user_set.add(...): the users named
        for user_id in pk_set or ():
            access_changed_on_commit(user_id)


@receiver(post_save, sender=User)
def _recheck_sockets_on_account_change(sender, instance, created, update_fields=None, **kwargs) -> None:
    # a login saves last_login alone: nothing that grants access changed
    if not created and set(update_fields or ()) != {"last_login"}:
        access_changed_on_commit(instance.pk)


@receiver(post_delete, sender=User)
def _close_sockets_of_deleted_user(sender, instance, **kwargs) -> None:
    access_changed_on_commit(instance.pk)
