"""What the portfolio app announces to the apps above it (charts subscribes in its AppConfig.ready()).

Sent after the transaction that changed the portfolios' data committed, never inside it: subscribers
queue work in other processes, which must see the committed data.
"""

from django.dispatch import Signal

# The data of these portfolios changed (transactions, settings, or prices and rates they use); their
# data version was bumped. Arguments: portfolio_ids (sorted list of int); since (date | None): the
# earliest day whose data changed when only prices from that day on did (prices_changed's), else None;
# history (bool): whether their history_version was bumped too — False when only today's live closes
# changed (portfolio.cache.history_changed), decided once, in the write's transaction.
portfolios_changed = Signal()

# A portfolio was deleted (after commit). Argument: portfolio_id (int).
portfolio_deleted = Signal()
