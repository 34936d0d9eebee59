from django.apps import AppConfig


class LoopConfig(AppConfig):
    name = "inftool_web.loop"
    label = "loop"
    verbose_name = "Iterations, checkpoints, training and evaluation"
