"""The providers' search answers cached in Redis, and the claim that has each query searched once."""

from prices.providers.base import SearchHit
from prices.search_cache import search_answer_get, search_answer_set, search_claim, search_failure_set

APPLE = SearchHit("AAPL", "Apple Inc.", "NASDAQ", "USD", "stock", "yahoo")


def test_a_query_is_claimed_by_one_asker_and_not_again_once_answered():
    assert search_claim(provider="yahoo", query="apple")
    assert not search_claim(provider="yahoo", query="apple")  # pending: the first asker's

    search_answer_set(provider="yahoo", query="apple", hits=[APPLE])  # stores the answer, drops the claim

    # An asker who read "no answer" just before the worker stored it must not have it searched again.
    assert not search_claim(provider="yahoo", query="apple")
    assert search_answer_get(provider="yahoo", query="apple") == {"status": "ok", "hits": [APPLE.as_dict()]}
    assert search_claim(provider="yahoo", query="pear")  # another query is its own


def test_a_failed_search_is_not_claimed_again_while_remembered():
    assert search_claim(provider="yahoo", query="qwzx")
    search_failure_set(provider="yahoo", query="qwzx", error="TransientError: yahoo: HTTP 503")

    assert not search_claim(provider="yahoo", query="qwzx")
    assert search_answer_get(provider="yahoo", query="qwzx") == {
        "status": "failed", "error": "TransientError: yahoo: HTTP 503"}
