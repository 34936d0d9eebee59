from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "inftool_web.core"
    label = "core"
    verbose_name = "InfTool core"

    def ready(self) -> None:
        from . import signals  # noqa: F401 - connects the handlers that close sockets on lost access (needs models loaded)
