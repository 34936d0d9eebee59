"""The websocket of an iteration's page: core's events consumer, for iterations that exist."""

from inftool_web.core.consumers import EventsConsumer

from .models import Iteration


class IterationEventsConsumer(EventsConsumer):
    @staticmethod
    def exists(iteration_id: int) -> bool:
        return Iteration.objects.filter(pk=iteration_id).exists()
