from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "inftool_web.core"
    label = "core"
    verbose_name = "InfTool core"
