from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "inftool_web.core"
    label = "core"
    verbose_name = "InfTool core"

    def ready(self) -> None:
        from . import signals  # noqa: F401 - connects the worker start-up recovery
