"""Websocket routes: the dashboard's events (core) and an iteration's (loop)."""

from django.urls import path

from inftool_web.core.consumers import EventsConsumer
from inftool_web.loop.consumers import IterationEventsConsumer

websocket_urlpatterns = [
    path("ws/events/", EventsConsumer.as_asgi()),
    path("ws/iterations/<int:iteration_id>/", IterationEventsConsumer.as_asgi()),
]
