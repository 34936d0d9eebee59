"""ASGI entry point: HTTP goes to Django, websockets to Channels consumers (logged-in users only)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inftool_web.settings")
# A web process runs each request's view on a thread of its own, so without a pool every
# request would open (and close) a PostgreSQL connection. Web processes pool them by default
# (DATABASE_POOL_MAX_SIZE in settings); the default is taken back once settings have read it,
# so processes started from here (and a test process importing this module) keep their own.
_pool_default = "DATABASE_POOL_MAX_SIZE" not in os.environ
os.environ.setdefault("DATABASE_POOL_MAX_SIZE", "16")
django_asgi_app = get_asgi_application()
if _pool_default:
    del os.environ["DATABASE_POOL_MAX_SIZE"]

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from inftool_web.core.limits import BodySizeLimit  # noqa: E402
from inftool_web.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": BodySizeLimit(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
