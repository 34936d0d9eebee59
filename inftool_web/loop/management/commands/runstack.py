"""Start the ASGI web server and the Celery workers together; Ctrl-C stops them all cleanly.

A process that dies is started again after a backoff (core/supervisor.py) while the rest
keep running: a crashed worker does not take the web server down with it.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from inftool_web.catalog.models import Tool
from inftool_web.core.supervisor import Supervisor
from inftool_web.loop.models import Iteration
from inftool_web.loop.services import iteration_launch


class Command(BaseCommand):
    help = "Run the web server (uvicorn, ASGI) and Celery workers in the foreground."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("INFTOOL_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("INFTOOL_PORT", "8000")))
        parser.add_argument(
            "--roleplay-concurrency",
            type=int,
            default=int(os.environ.get("INFTOOL_ROLEPLAY_CONCURRENCY", "8")),
            help="Threads of the role-play worker; their model calls share one batched model.",
        )

    def handle(self, *args, host, port, roleplay_concurrency, **options):
        python = sys.executable
        commands = {
            "web": [
                python, "-m", "uvicorn", "inftool_web.asgi:application",
                "--host", host, "--port", str(port), "--log-level", "info",
            ],
            # Role-play tasks spend their time waiting on the model; threads let many of them
            # feed one process-wide batched model.
            "worker-roleplay": [
                python, "-m", "celery", "-A", "inftool_web", "worker", "-n", "roleplay@%h",
                "-Q", "default,roleplay", "--pool", "threads", "-c", str(roleplay_concurrency),
                "-l", "info",
            ],
            # Training and evaluation take the whole machine: one at a time.
            "worker-gpu": [
                python, "-m", "celery", "-A", "inftool_web", "worker", "-n", "gpu@%h",
                "-Q", "gpu", "--pool", "solo", "-l", "info",
            ],
        }
        self._queue_demo_iteration()
        # The web server's health report and dashboard name a worker that does not answer.
        env = dict(os.environ)
        env.setdefault("INFTOOL_EXPECTED_WORKERS", "roleplay,gpu")
        supervisor = Supervisor(commands, env=env, log=self.stderr.write)
        supervisor.start()
        url = f"http://{host}:{port}/"
        self.stdout.write(self.style.SUCCESS(f"InfTool is starting at {url}  (Ctrl-C stops it)"))

        stopping = False

        def stop(signum=None, frame=None):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                supervisor.tick()
                time.sleep(0.5)
        finally:
            supervisor.stop()
        self.stdout.write("stopped")

    def _queue_demo_iteration(self) -> None:
        """On an empty database, queue a small synthesis so the dashboard shows live work."""
        if not settings.INFTOOL_DEMO_ON_EMPTY or Iteration.objects.exists() or not Tool.objects.exists():
            return
        it = iteration_launch(
            config={"count": 6, "max_turns": 3, "profile": "none", "eval_limit": 2}, name="demo"
        )
        self.stdout.write(f"queued demo iteration {it.number} (6 trajectories on the embedded model)")
