"""What a run measured: the commit it ran at, whether the tree had changes, and where its results may go.

The figures in docs/PERFORMANCE.md and bench/results/latest.json must belong to a commit anyone can
check out, so `make bench` refuses to write them from a tree with changes. `--allow-dirty` runs
anyway, for local experiments, and writes to var/bench/results/ instead, leaving the repository's
files as the last clean run wrote them.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.env import LOG_DIR, RESULTS_DIR, ROOT

DOC = ROOT / "docs" / "PERFORMANCE.md"
EXPERIMENT_DIR = LOG_DIR / "results"


@dataclass(frozen=True)
class Provenance:
    commit: str | None
    commit_date: str | None
    changed: list[str]  # `git status --porcelain` lines: modified, staged or untracked files

    @property
    def clean(self) -> bool:
        return self.commit is not None and not self.changed

    def as_dict(self) -> dict:
        return {"commit": self.commit, "commit_date": self.commit_date, "clean_tree": self.clean,
                "changed_files": self.changed[:20]}


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def provenance_read() -> Provenance:
    commit = _git("rev-parse", "HEAD")
    date = _git("show", "-s", "--format=%cI", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=normal") or ""
    return Provenance(commit=commit.strip() if commit else None, commit_date=date.strip() if date else None,
                      changed=[line for line in status.splitlines() if line.strip()])


def refusal(provenance: Provenance) -> str | None:
    """Why this tree may not write the repository's results (None: it may)."""
    if provenance.commit is None:
        return "bench: not a git checkout (or git is missing): the results could not name the commit they measured."
    if provenance.changed:
        listed = "\n".join(f"  {line}" for line in provenance.changed[:10])
        more = f"\n  … and {len(provenance.changed) - 10} more" if len(provenance.changed) > 10 else ""
        return ("bench: the working tree has changes, so the results would not belong to any commit:\n"
                f"{listed}{more}\n"
                "Commit or stash them and run again; or, for a local experiment, pass --allow-dirty "
                "(make bench BENCH_ARGS=--allow-dirty): the results then go to var/bench/results/, "
                "not to docs/PERFORMANCE.md or bench/results/latest.json.")
    return None


def output_paths(*, experiment: bool) -> tuple[Path, Path]:
    """(results JSON, Markdown report): the repository's for a clean run, var/bench/results/ otherwise."""
    if experiment:
        return EXPERIMENT_DIR / "latest.json", EXPERIMENT_DIR / "PERFORMANCE.md"
    return RESULTS_DIR / "latest.json", DOC
