"""Profiles for missed targets (pyinstrument, sampling): where the time of the missed operation goes,
so the report's next step starts from evidence. Run in this process through Django's test client,
which executes exactly the code the web server runs for the same request, minus the socket."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from bench.env import ROOT

INTERVAL_SECONDS = 0.001
TREE_LINES = 70
TOP_FRAMES = 10


def _is_ours(path: str) -> bool:
    return path.startswith(str(ROOT)) and "/.venv/" not in path and "/bench/" not in path


def _top_frames(root, total: float) -> list[dict]:
    """The project's own functions, each charged with its time minus the time of the project's
    functions it calls: library work (ORM, json, pandas) lands on the project function that asked for
    it, so the list names the line of our code to change. Each comes with its biggest library calls."""
    charged: dict[str, float] = {}
    calls: dict[str, dict[str, float]] = {}

    def ours_below(frame) -> float:
        """Time of the nearest project frames under `frame` (walking through library frames)."""
        return sum(child.time if _ours(child) else ours_below(child) for child in frame.children)

    def walk(frame) -> None:
        if _ours(frame):
            key = f"{frame.function} ({frame.file_path.removeprefix(str(ROOT) + '/')}:{frame.line_no})"
            charged[key] = charged.get(key, 0.0) + frame.time - ours_below(frame)
            for child in frame.children:
                if not _ours(child) and not child.is_synthetic:
                    name = f"{child.function} ({_short(child.file_path)})"
                    spent = child.time - ours_below(child)
                    calls.setdefault(key, {})[name] = calls.get(key, {}).get(name, 0.0) + spent
        for child in frame.children:
            walk(child)

    walk(root)
    ranked = sorted(charged.items(), key=lambda kv: -kv[1])
    return [{"function": k, "percent": round(100 * v / total, 1),
             "calls": [{"call": c, "percent": round(100 * t / total, 1)}
                       for c, t in sorted(calls.get(k, {}).items(), key=lambda kv: -kv[1])[:3] if t > 0]}
            for k, v in ranked[:TOP_FRAMES] if v > 0]


def _short(path: str | None) -> str:
    path = path or "?"
    return path.split("site-packages/", 1)[1] if "site-packages/" in path else path.rsplit("/", 1)[-1]


def _libraries(root, total: float) -> list[dict]:
    """Self time by package (django, rest_framework, json, psycopg…): what kind of work it is. Built-in
    functions count for the package that called them."""
    by_package: dict[str, float] = {}

    def package(frame, inherited: str) -> str:
        path = frame.file_path or ""
        if _ours(frame):
            return path.removeprefix(str(ROOT) + "/").split("/")[0] + " (ours)"
        if "site-packages/" in path:
            return path.split("site-packages/", 1)[1].split("/")[0].removesuffix(".py")
        if path.startswith("/") and "/python3" in path:
            return path.split("/python3.", 1)[1].split("/", 2)[1].removesuffix(".py")  # the stdlib module
        return inherited

    def walk(frame, inherited: str) -> None:
        if frame.is_synthetic:  # pyinstrument's "[self]" leaf: the parent's own time, counted once here
            by_package[inherited] = by_package.get(inherited, 0.0) + frame.time
            return
        name = package(frame, inherited)
        for child in frame.children:
            walk(child, name)

    walk(root, "other")
    ranked = sorted(by_package.items(), key=lambda kv: -kv[1])
    return [{"package": k, "percent": round(100 * v / total, 1)} for k, v in ranked[:8] if v > 0]


def _ours(frame) -> bool:
    return bool(frame.file_path) and _is_ours(frame.file_path)


def profile(name: str, operation: Callable[[], object], *, repeat: int,
            before: Callable[[], None] | None = None) -> dict:
    """Profile `repeat` calls of `operation`; per-operation time and hot spots. `before` runs ahead of each call
    outside the profile and its time: what puts the state in place that an operation is measured from (a cache
    emptied, a new day's closes written) is the bench's doing, not the operation's cost."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=INTERVAL_SECONDS)
    wall = 0.0
    for _ in range(repeat):
        if before:
            before()
        started = time.perf_counter()
        profiler.start()  # a profiler started again adds to its session: the calls' samples only
        operation()
        profiler.stop()
        wall += time.perf_counter() - started
    session = profiler.last_session
    root = session.root_frame()
    tree = profiler.output_text(unicode=False, color=False, time="percent_of_total",
                                processor_options={"filter_threshold": 0.02})
    return {
        "name": name,
        "operations": repeat,
        "ms_per_operation_profiled": round(wall / max(1, repeat) * 1000, 2),
        "top": _top_frames(root, root.time) if root else [],
        "packages": _libraries(root, root.time) if root else [],
        # Paths as in the repository: the run's checkout may be anywhere.
        "tree": "\n".join(tree.strip("\n").replace(str(ROOT) + "/", "").splitlines()[:TREE_LINES]),
    }


def requests_profile(name: str, *, token: str, urls: list[str], repeat: int,
                     before: Callable[[], None] | None = None) -> dict:
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    for url in urls:  # warm-up through the same path, so one-time loads (calendars, imports) stay out
        if before:
            before()
        client.get(url)
    cycle = itertools.cycle(urls)
    return profile(name, lambda: client.get(next(cycle)), repeat=repeat * len(urls), before=before)
