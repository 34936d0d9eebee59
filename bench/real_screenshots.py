"""Screenshots of the main pages, taken from what the embedded model really produced.

    python bench/real_screenshots.py --database inftool_shots --out docs/screenshots

This script does not use hand-seeded rows (``seed_demo_rows.py`` makes those for the load
benches). On a fresh database it:

1. prepares this machine (``setup_local``: roles, the embedded model, the corpus sample);
2. builds the MCP tree;
3. runs one real loop iteration in-process (``iterate``: synthesis with SmolLM2, SFT,
   GRPO, BFCL V3 on a few items);
4. runs a second iteration's synthesis (``synthesize``), whose Tool Agent is the first
   iteration's checkpoint;
5. serves the app and saves a PNG of each page with Debian's Chromium.

The trajectory page shows an accepted multi-turn trajectory when there is one, else the
first accepted one.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("INFTOOL_ENV", "local")  # a bench runs on a development machine
PASSWORD = "screenshots-password-1"


def _manage(env: dict, *args: str) -> None:
    print("$ manage.py", " ".join(args), flush=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)
    print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="inftool_shots", help="database on 127.0.0.1, dropped and re-created")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--count", type=int, default=15, help="trajectories of the trained iteration")
    parser.add_argument("--second-count", type=int, default=10, help="trajectories of the second iteration")
    parser.add_argument("--eval-limit", type=int, default=2, help="BFCL items per category")
    args = parser.parse_args()

    env = dict(os.environ, DJANGO_SETTINGS_MODULE="inftool_web.settings",
               DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{args.database}",
               INFTOOL_DEMO_ON_EMPTY="false")
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.database}"')
    _manage(env, "migrate", "--noinput", "-v", "0")
    _manage(env, "setup_local", "--skip-demo-user")
    _manage(env, "build_tree", "--no-judge")
    _manage(env, "iterate", "--count", str(args.count), "--profile", "cpu", "--eval-limit", str(args.eval_limit),
            "--eval-categories", "simple", "multiple", "parallel", "irrelevance", "--max-turns", "3")
    _manage(env, "synthesize", "--count", str(args.second_count), "--seed", "1", "--max-turns", "3")

    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from inftool_web.core.roles import set_role
    from inftool_web.loop.models import Iteration
    from inftool_web.synth.models import Trajectory

    user, _ = get_user_model().objects.get_or_create(username="shots")
    user.set_password(PASSWORD)
    user.save()
    set_role(user, "operator")
    iterations = list(Iteration.objects.order_by("number").values_list("pk", flat=True))
    accepted = Trajectory.objects.filter(verdict="accepted").order_by("id")
    shown = accepted.filter(mode="multi_turn").first() or accepted.first() or Trajectory.objects.first()
    sys.path.insert(0, str(Path(__file__).parent))
    from seed_demo_rows import capture

    capture(args.out, env, user="shots", password=PASSWORD, pages={
        "dashboard": "/", "iteration": f"/iterations/{iterations[0]}/", "trajectory": f"/trajectories/{shown.pk}/",
        "tools": "/tools/", "audit": f"/audit/?iteration={iterations[0]}&size=8&seed=1",
        "evaluations": "/evaluations/", "launch": "/iterations/new/",
    })


if __name__ == "__main__":
    main()
