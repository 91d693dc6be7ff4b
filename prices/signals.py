"""What the prices app announces to the apps above it, which subscribe in their AppConfig.ready().

Both are sent inside the database transaction that wrote the data, so a subscriber's own writes
(portfolio data versions) commit or roll back with it.
"""

from django.dispatch import Signal

# Daily closes of these instruments changed (a close re-written as it was is not announced, except
# today's). Arguments: instrument_ids (sorted list of int) and since (date | None): the earliest day
# changed — nothing before it changed, so a close of today alone (an intraday refresh) leaves every day
# before today as it was; None when any day may have changed (an instrument's currency).
prices_changed = Signal()

# The sector and country profiles of these instruments were stored (fetched, or found unknown). Argument:
# instrument_ids (list of int). Nothing any chart draws depends on them: only allocations by sector,
# country and region do.
profiles_changed = Signal()

# Daily FX rates of these days and later are about to be written, in this transaction (one statement may insert
# some and update others). Argument: since (date): the earliest day. A subscriber that the write's own effects
# lock rows of takes its locks here first, in an order of its own, rather than in the order the write's
# statements happen to take them.
fx_rates_writing = Signal()

# Daily FX rates between these currencies were written. Argument: currencies (sorted list of major
# ISO codes: both sides of every pair written).
fx_rates_changed = Signal()
