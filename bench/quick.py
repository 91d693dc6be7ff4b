"""`make bench-quick`: the benchmarks' own code paths at small sizes, in under two minutes, for CI.

It fails only on figures that do not depend on the machine: SQL queries per dashboard request (and
that they do not grow with holdings), provider requests per refresh (one per batch, the same however
many portfolios share the instruments, every price stored), every hot price-history read on an index,
and the naive baseline agreeing with the product to the cent. Timings are printed, never asserted: CI
machines are shared and noisy. Results go to var/bench/quick/latest.json, never to the repository.

    python -m bench.quick
"""

from __future__ import annotations

import json
import sys

from bench import env

# Small, but big enough that Postgres plans the price-history reads as it does at full size (a table of a
# few pages is read whole whatever its indexes). The provider paced at 20 requests a second, not the product's
# 0.5: the requests a refresh makes do not depend on the pace, and at 0.5 the refreshes alone took 20 s.
QUICK_ARGS = [
    "--instruments", "200", "--batch-size", "50", "--latency-ms", "20", "--naive-subset", "10", "--rate", "20",
    "--portfolios", "40", "--portfolio-holdings", "5",
    "--holdings", "40", "--years", "3", "--tx-per-holding", "4", "--small-holdings", "5",
    "--warm-samples", "10", "--cold-samples", "2", "--cold-pages", "1", "--naive-samples", "1",
    "--index-subset", "2", "--load-clients", "10", "--load-seconds", "2",
    "--only", "refresh", "indexes", "dashboard", "load", "--no-profiles", "--no-docs",
]
OUTPUT = env.LOG_DIR / "quick" / "latest.json"
# Token, the portfolio's owner and versions (confirmed by their copy) and answers all come from Redis.
EXPECTED_WARM_QUERIES = 0


def checks(results: dict) -> list[str]:
    """The deterministic figures that are wrong (empty: all hold)."""
    failures = [f"section {name} failed: {error.splitlines()[0]}" for name, error in results["errors"].items()]
    sections = results["sections"]
    if refresh := sections.get("refresh"):
        one, many, expected = refresh["one_portfolio"], refresh["shared_portfolios"], refresh["expected_requests"]
        instruments = refresh["params"]["instruments"]
        if one["requests"] != expected:
            failures.append(f"refresh: {one['requests']} provider requests, expected {expected}")
        if many["requests"] != one["requests"]:
            failures.append(f"refresh with shared portfolios: {many['requests']} requests, expected {one['requests']}")
        for name, run in (("refresh", one), ("refresh with shared portfolios", many)):
            if run["state"] != "SUCCESS" or run["stored"] != instruments:
                failures.append(f"{name}: {run['state']}, {run['stored']} of {instruments} prices stored")
    if dashboard := sections.get("dashboard"):
        queries = dashboard["queries"]
        for endpoint, counts in queries["large"].items():
            if counts != queries["small"][endpoint]:
                failures.append(f"{endpoint}: queries grow with holdings: {queries['small'][endpoint]} for "
                                f"{queries['small_holdings']}, {counts} for {queries['large_holdings']} (warm/cold)")
            for size in ("small", "large"):
                warm = queries[size][endpoint]["warm"]
                if warm != EXPECTED_WARM_QUERIES:
                    failures.append(f"{endpoint}: {warm} queries warm with {queries[size + '_holdings']} holdings, "
                                    f"expected {EXPECTED_WARM_QUERIES}")
    if indexes := sections.get("indexes"):
        for name, query in indexes["queries"].items():
            if query["expects_index"] and not query["index_used"]:
                failures.append(f"{name} ({query['runs_in']}) reads no index: {query['with_index']['scans']}")
    if (load := sections.get("load")) and load["errors"]:
        failures.append(f"load: {load['errors']} errors ({load['error_kinds']})")
    return failures


def timings_text(results: dict) -> str:
    """What was measured, for the log only."""
    from bench.report import replay_outdated_lines, targets_evaluate

    lines = ["bench-quick timings (printed, not asserted):"]
    lines += [f"  {t.what}: {t.result} (baseline {t.baseline})" for t in targets_evaluate(results)]
    lines += [f"  {line}" for line in replay_outdated_lines(results["sections"].get("dashboard") or {})]
    return "\n".join(lines)


def main() -> int:
    from bench import run
    from bench.provenance import provenance_read

    args = run.arguments(QUICK_ARGS)
    results = run.measure(args, argv=QUICK_ARGS, provenance=provenance_read().as_dict())
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(timings_text(results), flush=True)
    failures = checks(results)
    for failure in failures:
        print(f"bench-quick: FAILED {failure}", flush=True)
    print(f"bench-quick: {'failed' if failures else 'passed'} in {results['total_seconds']} s; "
          f"results in {OUTPUT.relative_to(env.ROOT)}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
