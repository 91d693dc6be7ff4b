"""Counts and outcomes in words, one rule for every message a person reads (events, commands, logs)."""

from collections.abc import Mapping


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """`1 portfolio`, `2 portfolios`, `0 instruments` (pass `plural_form` where adding s is wrong)."""
    return f"{count} {singular if count == 1 else (plural_form or singular + 's')}"


def job_outcome(job: Mapping) -> str:
    """What a finished refresh job did: `success`, `partial` (some failed), or `failed` (none refreshed, or
    the job itself failed), then its counts: "partial: 26 refreshed, 1 failed"."""
    done, failed = job.get("done", 0), job.get("failed", 0)
    nothing_done = job.get("state") == "FAILURE" or (failed and not done)
    verdict = "failed" if nothing_done else "partial" if failed else "success"
    counts = [f"{done} refreshed"]
    if failed:
        counts.append(f"{failed} failed")
    if job.get("skipped"):
        counts.append(f"{job['skipped']} still fresh")
    return f"{verdict}: {', '.join(counts)}"
