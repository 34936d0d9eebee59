"""Start the ASGI web server and the Celery workers together; Ctrl-C stops them all cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from inftool_web.catalog.models import Tool
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
        procs: dict[str, subprocess.Popen] = {}
        for name, cmd in commands.items():
            procs[name] = subprocess.Popen(cmd, start_new_session=True)
        url = f"http://{host}:{port}/"
        self.stdout.write(self.style.SUCCESS(f"InfTool is starting at {url}  (Ctrl-C stops it)"))

        stopping = False

        def stop(signum=None, frame=None):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        try:
            while not stopping:
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with code {proc.returncode}; stopping the rest")
                        exit_code = proc.returncode or 1
                        stopping = True
                        break
                time.sleep(0.5)
        finally:
            self._shutdown(procs)
        if exit_code:
            raise SystemExit(exit_code)
        self.stdout.write("stopped")

    def _queue_demo_iteration(self) -> None:
        """On an empty database, queue a small synthesis so the dashboard shows live work."""
        if not settings.INFTOOL_DEMO_ON_EMPTY or Iteration.objects.exists() or not Tool.objects.exists():
            return
        it = iteration_launch(
            config={"count": 6, "max_turns": 3, "profile": "none", "eval_limit": 2}, name="demo"
        )
        self.stdout.write(f"queued demo iteration {it.number} (6 trajectories on the embedded model)")

    def _shutdown(self, procs: dict[str, subprocess.Popen]) -> None:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for name, proc in procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop in time; killing it")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
