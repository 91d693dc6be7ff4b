"""The numeric settings of config/settings.py, checked as the settings load (every process): a value that
cannot work — a zero where at least one is needed, a soft time limit past the hard one — stops the start
with one line naming the variable, instead of a confusing failure later. (The market-data settings, which
need the provider clients, are checked by prices/settings_check.py.)"""

from collections.abc import Mapping

# environment variable: (setting it sets, least value that works)
AT_LEAST = {
    "SESSION_COOKIE_AGE": ("SESSION_COOKIE_AGE", 60),
    "API_TOKEN_TTL_HOURS": ("API_TOKEN_TTL_HOURS", 1),
    "LOGIN_MAX_FAILURES": ("LOGIN_MAX_FAILURES", 1),
    "LOGIN_FAILURE_WINDOW_SECONDS": ("LOGIN_FAILURE_WINDOW_SECONDS", 1),
    "CELERY_PREFETCH_MULTIPLIER": ("CELERY_WORKER_PREFETCH_MULTIPLIER", 1),
    "CELERY_TASK_SOFT_TIME_LIMIT": ("CELERY_TASK_SOFT_TIME_LIMIT", 1),
    "CELERY_BEAT_MAX_LOOP_INTERVAL": ("CELERY_BEAT_MAX_LOOP_INTERVAL", 1),
    "REFRESH_INTERVAL_SECONDS": ("_REFRESH_INTERVAL", 2),
    "REFRESH_DB_RETRY_SECONDS": ("REFRESH_DB_RETRY_SECONDS", 0),
    "REFRESH_REDIS_RETRY_SECONDS": ("REFRESH_REDIS_RETRY_SECONDS", 0),
    "IMPORT_SYNC_MAX_ROWS": ("IMPORT_SYNC_MAX_ROWS", 1),
    "CHART_DEBOUNCE_SECONDS": ("CHART_DEBOUNCE_SECONDS", 0),
    "PRICE_SERIES_CACHE_MB": ("PRICE_SERIES_CACHE_MB", 0),
    "CHART_KEPT_VALUATIONS_MB": ("CHART_KEPT_VALUATIONS_MB", 0),
    "KEPT_ANSWERS_MB": ("KEPT_ANSWERS_MB", 0),
    "KEPT_REPLAYS_MB": ("KEPT_REPLAYS_MB", 0),
    "PROVIDER_MAX_ATTEMPTS": ("PROVIDER_MAX_ATTEMPTS", 1),
    "PROVIDER_CONCURRENCY": ("PROVIDER_CONCURRENCY", 1),
    "PROVIDER_BACKOFF_INITIAL_SECONDS": ("PROVIDER_BACKOFF_INITIAL_SECONDS", 0),
    "CIRCUIT_FAILURE_THRESHOLD": ("CIRCUIT_FAILURE_THRESHOLD", 1),
    "CIRCUIT_COOLDOWN_SECONDS": ("CIRCUIT_COOLDOWN_SECONDS", 0),
    "QUOTE_TTL_OPEN_SECONDS": ("QUOTE_TTL_OPEN_SECONDS", 1),
    "STALE_GRACE_MINUTES": ("STALE_GRACE_MINUTES", 0),
    "EVENTS_MAX_AGE_DAYS": ("EVENTS_MAX_AGE_DAYS", 1),
    "EVENTS_MAX_COUNT": ("EVENTS_MAX_COUNT", 1),
    "DATABASE_CONN_MAX_AGE": ("_CONN_MAX_AGE", 0),
    # Kept in Redis with an expiry: Redis refuses an expiry of 0 (the entry would never be written).
    "AUTH_CACHE_SECONDS": ("AUTH_CACHE_SECONDS", 1),
    "PORTFOLIO_ACCESS_CACHE_SECONDS": ("PORTFOLIO_ACCESS_CACHE_SECONDS", 1),
    "INSTRUMENT_SEARCH_TTL_SECONDS": ("INSTRUMENT_SEARCH_TTL_SECONDS", 1),
    "INSTRUMENT_SEARCH_FAILURE_TTL_SECONDS": ("INSTRUMENT_SEARCH_FAILURE_TTL_SECONDS", 1),
    "PROFILE_MAX_AGE_DAYS": ("PROFILE_MAX_AGE_DAYS", 1),
}
# environment variable: setting; these must be more than 0 (a timeout or a wait of 0 never succeeds)
ABOVE_ZERO = {
    "PROVIDER_TIMEOUT_SECONDS": "PROVIDER_TIMEOUT_SECONDS",
    "PROVIDER_MAX_WAIT_SECONDS": "PROVIDER_MAX_WAIT_SECONDS",
    "PROVIDER_BACKOFF_MAX_SECONDS": "PROVIDER_BACKOFF_MAX_SECONDS",
    "REQUEST_TIMING_FLUSH_SECONDS": "REQUEST_TIMING_FLUSH_SECONDS",
    "QUERY_CACHE_STATS_FLUSH_SECONDS": "QUERY_CACHE_STATS_FLUSH_SECONDS",
}


def settings_problems(values: Mapping) -> list[str]:
    """One line per setting that cannot work, naming its environment variable (empty: all good)."""
    problems = [f"{variable}={values[name]:g} must be at least {least}."
                for variable, (name, least) in AT_LEAST.items() if values[name] < least]
    problems += [f"{variable}={values[name]:g} must be more than 0."
                 for variable, name in ABOVE_ZERO.items() if values[name] <= 0]
    if values["HOUSEKEEPING_LOG_LEVEL"].upper() not in ("DEBUG", "INFO"):
        problems.append(f"HOUSEKEEPING_LOG_LEVEL={values['HOUSEKEEPING_LOG_LEVEL']} must be DEBUG or INFO.")
    if values["CELERY_TASK_TIME_LIMIT"] <= values["CELERY_TASK_SOFT_TIME_LIMIT"]:
        problems.append(f"CELERY_TASK_TIME_LIMIT={values['CELERY_TASK_TIME_LIMIT']} must be more than "
                        f"CELERY_TASK_SOFT_TIME_LIMIT={values['CELERY_TASK_SOFT_TIME_LIMIT']} (the task is told "
                        "to stop at the soft limit, and killed at the hard one).")
    # A task still running past these is taken for lost: redelivered to another worker (the broker's visibility
    # timeout), or, a chart generation, failed and queued again (the stuck-job cleaner). At 0, every one at once.
    # (Shorter than the tasks' time limit is a mistake in production — operations.md says so — but the fault
    # suites run workers with a few seconds of each on purpose.)
    for variable, value in (("CELERY_VISIBILITY_TIMEOUT",
                             values["CELERY_BROKER_TRANSPORT_OPTIONS"]["visibility_timeout"]),
                            ("CHART_GENERATION_STUCK_SECONDS", values["CHART_GENERATION_STUCK_SECONDS"])):
        if value <= 0:
            problems.append(f"{variable}={value} must be more than 0.")
    if values["CELERY_REDBEAT_LOCK_TIMEOUT"] <= values["CELERY_BEAT_MAX_LOOP_INTERVAL"]:
        problems.append(f"CELERY_REDBEAT_LOCK_TIMEOUT={values['CELERY_REDBEAT_LOCK_TIMEOUT']} must be more than "
                        f"CELERY_BEAT_MAX_LOOP_INTERVAL={values['CELERY_BEAT_MAX_LOOP_INTERVAL']} (beat renews "
                        "its lock once a loop).")
    return problems
