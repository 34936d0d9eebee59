from django.apps import AppConfig


class LoopConfig(AppConfig):
    name = "inftool_web.loop"
    label = "loop"
    verbose_name = "Iterations, checkpoints, training and evaluation"

    def ready(self) -> None:
        from . import signals  # noqa: F401 - connects the worker start-up recovery (needs models loaded)
