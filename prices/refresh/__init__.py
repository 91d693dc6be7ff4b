"""Refreshing stored prices: what to ask for (plan), storing what comes back (store), in the workers as a
job with progress (jobs) or here and now (run), history backfills (backfill) and stale-while-revalidate
(stale)."""
