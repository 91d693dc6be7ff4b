"""Counts and job outcomes in words: plurals right, and a partly failed job never called a success."""

import pytest

from core.wording import job_outcome, plural


@pytest.mark.parametrize(("count", "expected"), [(0, "0 portfolios"), (1, "1 portfolio"), (2, "2 portfolios")])
def test_plural(count, expected):
    assert plural(count, "portfolio") == expected


def test_irregular_plural():
    assert (plural(1, "batch", "batches"), plural(3, "batch", "batches")) == ("1 batch", "3 batches")


@pytest.mark.parametrize(("job", "expected"), [
    ({"state": "SUCCESS", "done": 27, "failed": 0, "skipped": 0}, "success: 27 refreshed"),
    ({"state": "SUCCESS", "done": 26, "failed": 1, "skipped": 0}, "partial: 26 refreshed, 1 failed"),
    ({"state": "SUCCESS", "done": 0, "failed": 3, "skipped": 0}, "failed: 0 refreshed, 3 failed"),
    ({"state": "FAILURE", "done": 5, "failed": 2, "skipped": 0}, "failed: 5 refreshed, 2 failed"),
    ({"state": "SUCCESS", "done": 2, "failed": 0, "skipped": 4}, "success: 2 refreshed, 4 still fresh"),
])
def test_job_outcome_says_what_happened(job, expected):
    assert job_outcome(job) == expected
