from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .events import DASHBOARD_GROUP, iteration_group


class EventsConsumer(AsyncJsonWebsocketConsumer):
    """Forwards the events of one iteration (or of the dashboard) to a logged-in browser."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        iteration_id = self.scope["url_route"]["kwargs"].get("iteration_id")
        self.group = iteration_group(int(iteration_id)) if iteration_id else DASHBOARD_GROUP
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def inftool_event(self, message):
        await self.send_json(message["event"])
