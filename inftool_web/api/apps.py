from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "inftool_web.api"
    label = "api"
    verbose_name = "InfTool REST API"
