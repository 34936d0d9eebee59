"""Settings for the test suite: the same real PostgreSQL and Redis, kept apart from `make run`.

Tests use their own Redis database number and key prefixes, so a `make run` stack on the
same machine neither steals the tests' tasks nor receives their events.
"""

import os

# Forced, not defaulted: `make test` exports INFTOOL_ENV=local for everything it runs.
os.environ["INFTOOL_ENV"] = "test"
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")
os.environ.setdefault("INFTOOL_DEMO_ON_EMPTY", "false")
os.environ.setdefault("INFTOOL_DATA_CARD_EMBEDDINGS", "false")
# The model hosts the tests' configs name (loopback servers and cluster-like names).
os.environ.setdefault("INFTOOL_MODEL_HOSTS", "127.0.0.1,localhost,::1,h,x,vllm,gpu-1")
os.environ.setdefault("INFTOOL_API_KEY_HOSTS", "INFTOOL_LLM_API_KEY=vllm")

from .settings import *  # noqa: E402,F403
from .settings import CELERY_BROKER_TRANSPORT_OPTIONS, CHANNEL_LAYERS  # noqa: E402

CELERY_BROKER_TRANSPORT_OPTIONS = {**CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": "inftool-test:"}
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = "inftool-test"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
