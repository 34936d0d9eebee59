from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model

from .events import DASHBOARD_GROUP, iteration_group, session_tag, user_group
from .roles import has_role

# Close codes (4000-4999 are the application's): the browser's ws extension does not retry
# on them as it would on a dropped connection.
NOT_SIGNED_IN, NO_ROLE, NO_SUCH_ITERATION = 4401, 4403, 4404


@database_sync_to_async
def _reload_user(user_id: int):
    """The user as stored now (a role or the account may have changed), or None."""
    return get_user_model().objects.filter(pk=user_id).first()


class EventsConsumer(AsyncJsonWebsocketConsumer):
    """Forwards the events of one iteration (or of the dashboard) to a signed-in user who may
    read them: the same ``viewer`` role as the pages that open these sockets.  An app whose
    rows have event groups subclasses it and says which ids exist (:meth:`exists`)."""

    @staticmethod
    def exists(iteration_id: int) -> bool:
        """Whether events of ``iteration_id`` can be followed (called in a thread)."""
        return True

    async def _refusal(self, user, iteration_id: int | None) -> int | None:
        """None when ``user`` may receive these events, else the close code saying why not."""
        if not await database_sync_to_async(has_role)(user, "viewer"):
            return NOT_SIGNED_IN if not user.is_active else NO_ROLE
        if iteration_id is not None and not await database_sync_to_async(self.exists)(iteration_id):
            return NO_SUCH_ITERATION
        return None

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=NOT_SIGNED_IN)
            return
        raw = self.scope["url_route"]["kwargs"].get("iteration_id")
        iteration_id = int(raw) if raw is not None else None
        refusal = await self._refusal(user, iteration_id)
        if refusal is not None:
            await self.close(code=refusal)
            return
        self.iteration_id = iteration_id
        self.user_id = user.pk
        session = self.scope.get("session")
        self.session_tag = session_tag(session.session_key if session is not None else None)
        self.group = iteration_group(iteration_id) if iteration_id is not None else DASHBOARD_GROUP
        # the user's own group hears of log-outs and role changes (core/signals.py)
        self.groups_joined = [self.group, user_group(user.pk)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """The browser only listens: whatever it sends (JSON or not) is ignored."""

    async def inftool_event(self, message):
        await self.send_json(message["event"])

    async def inftool_access(self, message):
        """The user's access changed: a session ended, a role or the account changed.  A
        socket no longer allowed is closed, as a new one would be refused."""
        if message.get("ended_session") and message["ended_session"] == self.session_tag:
            await self.close(code=NOT_SIGNED_IN)
            return
        user = await _reload_user(self.user_id)
        refusal = NOT_SIGNED_IN if user is None else await self._refusal(user, self.iteration_id)
        if refusal is not None:
            await self.close(code=refusal)
