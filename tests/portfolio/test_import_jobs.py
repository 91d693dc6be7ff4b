"""Large imports run as a worker job (a real Celery worker): the request answers at once, the job
reports the rows checked, and its outcome (counts, or every bad row) is read from the job."""

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from portfolio.models import Account, Transaction
from prices.search_cache import search_answer_set

pytestmark = pytest.mark.django_db(transaction=True)

HEADER = "date,type,symbol,quantity,price,fee,currency\n"


def rows(count: int, *, bad_row: int | None = None) -> str:
    lines = [f"2024-01-{1 + n % 28:02d},BUY,T{n % 40:02d},1,{10 + n % 7}.25,0,USD\n" for n in range(count)]
    if bad_row is not None:
        lines[bad_row - 2] = "2024-01-05,BUY,T01,-1,10,0,USD\n"  # file row numbers count the header as 1
    return HEADER + "".join(lines)


def job_end(client, url: str, timeout: float = 60) -> dict:
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        job = client.get(url).json()
        seen.append((job["state"], job["done"]))
        if job["state"] in ("SUCCESS", "FAILURE"):
            return {**job, "seen": seen}
        time.sleep(0.05)
    raise AssertionError(f"import job still running: {seen[-3:]}")


def test_a_large_import_answers_at_once_and_a_worker_imports_it_with_progress(worker, api, portfolio, settings):
    settings.IMPORT_SYNC_MAX_ROWS = 500
    url = f"/api/portfolios/{portfolio.pk}/transactions/import/"

    queued = api.post(url, data=rows(3000), content_type="text/csv")

    assert queued.status_code == 202, queued.json()
    assert Transaction.objects.count() == 0  # nothing written by the request itself
    job = job_end(api, queued.json()["progress_url"])
    assert (job["state"], job["kind"], job["total"], job["done"]) == ("SUCCESS", "import_transactions", 3000, 3000)
    assert job["result"] == {"created": 3000, "skipped_duplicates": 0, "skipped_other": 0, "format": "generic"}
    assert Transaction.objects.filter(portfolio=portfolio).count() == 3000
    assert set(Transaction.objects.values_list("account__name", flat=True)) == {"Default"}
    # Its rows checked came through the job's progress (the steps on the way, every 500 rows, are asserted in
    # tests/portfolio/test_importing.py: on a fast machine they last a few milliseconds, less than a poll's
    # interval, so whether a poll sees one is luck).
    assert job["seen"][-1] == ("SUCCESS", 3000)


def test_a_large_import_goes_into_the_account_chosen(worker, api, portfolio, settings):
    settings.IMPORT_SYNC_MAX_ROWS = 500
    broker = Account.objects.create(portfolio=portfolio, name="Broker", currency="USD")
    url = f"/api/portfolios/{portfolio.pk}/transactions/import/?account={broker.pk}"

    job = job_end(api, api.post(url, data=rows(600), content_type="text/csv").json()["progress_url"])

    assert job["state"] == "SUCCESS", job
    assert set(Transaction.objects.values_list("account_id", flat=True)) == {broker.pk}


def test_a_large_import_with_a_bad_row_writes_nothing_and_names_the_row(worker, api, portfolio, settings):
    settings.IMPORT_SYNC_MAX_ROWS = 500
    url = f"/api/portfolios/{portfolio.pk}/transactions/import/"

    job = job_end(api, api.post(url, data=rows(1200, bad_row=777), content_type="text/csv").json()["progress_url"])

    assert job["state"] == "FAILURE"
    assert [e["error"] for e in job["errors"]] == [
        "Nothing was imported: 1 problem(s) in the file.", "row 777, quantity: Must be greater than zero."]
    assert Transaction.objects.count() == 0


def test_a_large_import_with_many_bad_rows_names_every_one_a_small_import_names(worker, api, portfolio, settings):
    # 60 bad rows (more than the 50 errors a job keeps of its batches)
    settings.IMPORT_SYNC_MAX_ROWS = 500
    url = f"/api/portfolios/{portfolio.pk}/transactions/import/"
    lines = rows(600).splitlines(keepends=True)
    for row in range(2, 62):
        lines[row - 1] = "2024-01-05,BUY,T01,-1,10,0,USD\n"

    job = job_end(api, api.post(url, data="".join(lines), content_type="text/csv").json()["progress_url"])

    assert job["state"] == "FAILURE"
    assert [e["error"] for e in job["errors"]] == ["Nothing was imported: 60 problem(s) in the file."] + [
        f"row {row}, quantity: Must be greater than zero." for row in range(2, 62)]
    assert Transaction.objects.count() == 0


def test_the_import_page_follows_a_large_import(worker, user, portfolio, settings, other_user):
    settings.IMPORT_SYNC_MAX_ROWS = 500
    web = Client()
    web.force_login(user)
    page = web.post(f"/portfolios/{portfolio.pk}/transactions/import/",
                    {"file": SimpleUploadedFile("big.csv", rows(1000).encode())})
    assert page.status_code == 302 and "?job=" in page["Location"]
    follow = web.get(page["Location"]).content.decode()
    job_id = page["Location"].split("?job=")[1]
    assert f'data-progress-url="/api/jobs/{job_id}/"' in follow and "js/import.js" in follow
    assert job_end(web, f"/api/jobs/{job_id}/")["state"] == "SUCCESS"
    # the job is the importer's own: another user does not see it
    stranger = Client()
    stranger.force_login(other_user)
    assert stranger.get(f"/api/jobs/{job_id}/").status_code == 404


def test_a_large_import_naming_a_symbol_its_provider_does_not_know_ends_its_job_naming_the_row(worker, api,
                                                                                              portfolio, settings):
    # (found after the rows' own checks, as the instruments are looked up: it ended no job before)
    settings.IMPORT_SYNC_MAX_ROWS = 500
    search_answer_set(provider="simulated", query="zzqx", hits=[])
    content = rows(1200).replace("2024-01-10,BUY,T09,", "2024-01-10,BUY,ZZQX,", 1)
    url = f"/api/portfolios/{portfolio.pk}/transactions/import/"

    job = job_end(api, api.post(url, data=content, content_type="text/csv").json()["progress_url"])

    assert job["state"] == "FAILURE"
    assert job["errors"][0]["error"] == "Nothing was imported: 1 problem(s) in the file."
    assert job["errors"][1]["error"].startswith("row 11, symbol: ZZQX is not an instrument simulated knows")
    assert Transaction.objects.count() == 0
