"""`make bench-quick` inside `make test`: the benchmarks' code paths at small sizes, failing only on
deterministic figures (bench/quick.py says which). Runs as its own process, on a Postgres database and a
Redis database of its own, as `make bench` does: it recreates the one and flushes the other."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
QUICK_REDIS_DB = 12  # neither the suite's (15 or TEST_REDIS_URL's), `make run`'s (0) nor `make bench`'s (11)
TIMEOUT_SECONDS = 300


def _bench_urls() -> dict[str, str]:
    database = os.environ.get("BENCH_DATABASE_URL") or urlunsplit(
        urlsplit(os.environ["DATABASE_URL"])._replace(path="/folio_bench_quick"))
    redis = os.environ.get("BENCH_REDIS_URL") or urlunsplit(
        urlsplit(os.environ["REDIS_URL"])._replace(path=f"/{QUICK_REDIS_DB}"))
    return {"BENCH_DATABASE_URL": database, "BENCH_REDIS_URL": redis}


@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="the benchmarks measure Postgres (EXPLAIN, COPY): DATABASE_URL must name one")
def test_bench_quick_passes_its_deterministic_checks():
    urls = _bench_urls()
    if int(urlsplit(urls["BENCH_REDIS_URL"]).path.strip("/") or 0) == int(
            urlsplit(os.environ["REDIS_URL"]).path.strip("/") or 0):
        pytest.fail("BENCH_REDIS_URL names the suite's own Redis database: bench-quick would flush it")
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    completed = subprocess.run([sys.executable, "-m", "bench.quick"], cwd=ROOT, env={**env, **urls},
                               capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    print(completed.stdout[-6000:])  # the timings, for whoever reads the log
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    assert "bench-quick: passed" in completed.stdout
