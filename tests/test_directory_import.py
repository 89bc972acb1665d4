"""The directory importer against the fictional Open Referral UK feed, served on a free local port."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest

from bot.directory.importer import Fetcher, ImportFailed, Limits, collect, main, run_import, shown_address
from bot.directory.model import FeedPhone, checked_phone, https_url, parse_service, plain, summary_of
from bot.directory.store import DirectoryStore, read_directory
from tests.openreferral_feed import FIXTURES, FeedServer

FAST = Limits(timeout=0.5, tries=2, backoff=0)
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc)
GOOD_NAMES = {
    "Wobbly Wellies Toddler Group", "Example Family Hub Chorley", "Bright Sparks Homework Club",
    "Paper Lantern Teen Space", "Calm Corner Parenting Course", "Lighthouse Example Youth Club",
    "Tiny Steps Baby Massage", "Example Lancashire Parent Line", "Sunny Side Stay and Play",
    "Muddy Boots Forest Club",
}  # fmt: skip


def uid(n: int) -> str:
    return f"f1c710a1-0000-4000-8000-{n:012d}"


@pytest.fixture(scope="module")
def feed() -> Iterator[FeedServer]:
    with FeedServer(slow_seconds=2) as server:
        yield server


def quick() -> Fetcher:
    return Fetcher(FAST, sleep=lambda _seconds: None)


def good_store(tmp_path: Path, feed: FeedServer) -> Path:
    store = tmp_path / "services.json"
    run_import(f"{feed.url}/good", store, FAST, now=NOW, fetcher=quick())
    return store


def test_a_good_feed_is_imported_with_counts_and_a_reason_for_every_skip(tmp_path: Path, feed: FeedServer) -> None:
    store = tmp_path / "services.json"
    report, directory = run_import(f"{feed.url}/good", store, FAST, now=NOW, fetcher=quick())
    assert report.counts() == {"read": 14, "valid": 10, "skipped": 4}
    reasons = {what.split('"')[1] if '"' in what else what: why for what, why in report.skipped}
    assert reasons["Old Example Drop-in"] == 'status is "inactive"'
    assert reasons["Example Fax Only Service"] == "no usable phone number, https website or email"
    assert reasons["Example Wrong Age Group"] == "minimum_age: value is not a valid float"
    assert any("name: must not be empty" in why for why in reasons.values())
    assert {s.name for s in directory.services} == GOOD_NAMES
    assert directory.source == f"{feed.url}/good" and directory.imported_at == NOW
    assert read_directory(store) == directory


def test_list_pages_without_child_records_are_fetched_service_by_service(tmp_path: Path, feed: FeedServer) -> None:
    good_store(tmp_path, feed)
    fetched = {path.rsplit("/", 1)[1] for path in feed.requests if "/good/services/" in path}
    listed_only = {uid(n) for n in (1, 2, 3, 4, 5, 11, 12, 13, 14)}  # pages 1 and 3 omit child records
    nested = {uid(n) for n in (6, 7, 8, 9, 10)}  # page 2 is fully nested
    assert listed_only <= fetched and not nested & fetched


def test_phones_are_found_in_every_place_the_schema_allows(tmp_path: Path, feed: FeedServer) -> None:
    directory = read_directory(good_store(tmp_path, feed))
    phones = {s.name: [p.display for p in s.phones] for s in directory.services}
    assert phones["Wobbly Wellies Toddler Group"] == ["01632 960101"]  # service.phones
    assert phones["Example Family Hub Chorley"] == ["01632 960102"]  # service.contacts[].phones
    assert phones["Bright Sparks Homework Club"] == ["01632 960103"]  # service_at_locations[].location.phones
    assert phones["Paper Lantern Teen Space"] == ["07700 900104"]  # service_at_locations[].phones
    assert phones["Calm Corner Parenting Course"] == ["01632 960105"]  # service_at_locations[].contacts[].phones
    assert phones["Muddy Boots Forest Club"] == ["01632 960113"]  # ...location.contacts[].phones
    assert phones["Example Lancashire Parent Line"] == ["01632 960108"]  # organization.phones, the last resort
    hrefs = {p.href for s in directory.services for p in s.phones}
    assert "tel:+441632960101" in hrefs and "tel:+447700900104" in hrefs


def test_the_kept_record_has_what_an_answer_needs(tmp_path: Path, feed: FeedServer) -> None:
    directory = read_directory(good_store(tmp_path, feed))
    toddlers = next(s for s in directory.services if s.name == "Wobbly Wellies Toddler Group")
    assert toddlers.summary == "Songs, messy play and a chat for parents and toddlers."
    assert toddlers.url == "https://example.org/wobbly-wellies"
    assert (toddlers.min_age, toddlers.max_age) == (1, 3)
    assert toddlers.addresses[0].town == "Chorley" and toddlers.addresses[0].outward == "PR7"
    assert toddlers.schedules == ["Tuesday 10:00 to 11:30"] and toddlers.taxonomy == ["Early years"]
    assert toddlers.organization == "Example Borough Council (fictional)"
    assert toddlers.last_modified == "2026-11-20T09:00:00.000Z"
    county = next(s for s in directory.services if s.name == "Example Lancashire Parent Line")
    assert county.service_areas == ["Lancashire"] and county.addresses == []


@pytest.mark.parametrize(
    "feed_name, expected",
    [
        ("invalid-json", r"page 2 \(.*/invalid-json/services\?page=2\): not valid JSON"),
        ("schema-error", r"page 2: not an Open Referral page: empty: .*contents: value is not a valid list"),
        ("http-500", r"page 3 \(.*\): HTTP 500 \(tried 2 times\)"),
        ("slow", r"page 2 \(.*\): timed out after 0.5 s \(tried 2 times\)"),
        ("empty", r"no valid services"),
    ],
)
def test_a_broken_feed_fails_clearly_and_leaves_the_store_as_it_was(
    tmp_path: Path, feed: FeedServer, feed_name: str, expected: str
) -> None:
    store = good_store(tmp_path, feed)
    before = store.read_bytes()
    with pytest.raises(ImportFailed, match=expected):
        run_import(f"{feed.url}/{feed_name}", store, FAST, fetcher=quick())
    assert store.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["services.json"]  # no half-written file left


def test_a_failed_first_import_writes_no_store(tmp_path: Path, feed: FeedServer) -> None:
    store = tmp_path / "services.json"
    with pytest.raises(ImportFailed):
        run_import(f"{feed.url}/http-500", store, FAST, fetcher=quick())
    assert not store.exists()


def test_a_page_that_fails_once_is_retried(tmp_path: Path, feed: FeedServer) -> None:
    report, _ = run_import(f"{feed.url}/flaky", tmp_path / "s.json", FAST, fetcher=quick())
    assert report.counts()["valid"] == 10
    assert sum("/flaky/services?" in p and "page=2" in p for p in feed.requests) == 2


def test_a_service_whose_full_record_fails_is_skipped_with_the_reason(tmp_path: Path, feed: FeedServer) -> None:
    report, directory = run_import(f"{feed.url}/detail-500", tmp_path / "s.json", FAST, fetcher=quick())
    assert report.counts() == {"read": 14, "valid": 9, "skipped": 5}
    assert any("Wobbly Wellies" in what and "full record" in why and "HTTP 500" in why for what, why in report.skipped)
    assert "Wobbly Wellies Toddler Group" not in {s.name for s in directory.services}


def test_a_much_smaller_import_needs_force(tmp_path: Path, feed: FeedServer) -> None:
    store = good_store(tmp_path, feed)
    one = tmp_path / "one.json"
    page = json.loads((FIXTURES / "good" / "services-page-2.json").read_text())
    one.write_text(json.dumps(page["contents"][:1]))
    with pytest.raises(ImportFailed, match="only 1 valid services, against 10"):
        run_import(str(one), store, FAST)
    assert len(read_directory(store).services) == 10
    run_import(str(one), store, FAST, force=True, shown_source="https://example.org/directory")
    assert len(read_directory(store).services) == 1
    assert read_directory(store).source == "https://example.org/directory"


def test_a_folder_or_a_file_of_feed_json_imports_too(tmp_path: Path) -> None:
    folder = collect(str(FIXTURES / "good"), FAST)
    assert folder.counts() == {"read": 14, "valid": 10, "skipped": 4}
    one_page = collect(str(FIXTURES / "good" / "services-page-2.json"), FAST)
    assert one_page.counts() == {"read": 5, "valid": 3, "skipped": 2}
    broken = collect(str(FIXTURES / "broken"), FAST)
    assert any("page-invalid.json: not valid JSON" in e for e in broken.page_errors)
    assert any("page-schema-error.json: not an Open Referral page" in e for e in broken.page_errors)


def test_only_https_except_on_this_machine_and_no_credentials_shown(tmp_path: Path) -> None:
    with pytest.raises(ImportFailed, match="use https"):
        run_import("http://directory.example.org/api", tmp_path / "s.json", FAST)
    with pytest.raises(ImportFailed, match="not a web address"):
        run_import("ftp://example.org/feed", tmp_path / "s.json", FAST)
    assert shown_address("https://user:secret@example.org:8443/api/services?key=abc") == (
        "https://example.org:8443/api/services"
    )


def test_the_command_prints_the_counts_and_exits_1_on_failure(
    tmp_path: Path, feed: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "services.json"
    assert main([f"{feed.url}/good", "--store", str(store), "--timeout", "2"]) == 0
    out = capsys.readouterr().out
    assert "read 14, valid 10, skipped 4" in out and 'skipped page 2, service' in out
    assert "Ofcom's ranges for drama" in out
    assert main([f"{feed.url}/http-500", "--store", str(store), "--timeout", "2", "--tries", "1"]) == 1
    captured = capsys.readouterr()
    assert "the store was left as it was" in captured.err and "HTTP 500" in captured.err
    assert len(read_directory(store).services) == 10


def test_the_store_reloads_live_keeps_the_last_good_copy_and_goes_when_removed(tmp_path: Path) -> None:
    store = tmp_path / "services.json"
    holder = DirectoryStore(store, check_every=0)
    assert holder.get(now=0) is None
    run_import(str(FIXTURES / "good"), store, FAST)
    assert len(holder.get(now=1).services) == 10
    run_import(str(FIXTURES / "good" / "services-page-2.json"), store, FAST, force=True)
    assert len(holder.get(now=2).services) == 3
    store.write_text("{ broken", encoding="utf-8")
    os.utime(store, (5, 5))
    assert len(holder.get(now=3).services) == 3
    store.unlink()
    assert holder.get(now=4) is None


def test_phone_numbers_and_web_addresses_are_checked() -> None:
    assert checked_phone(FeedPhone(number="01772 254868")).href == "tel:+441772254868"
    assert checked_phone(FeedPhone(number="+44 (0)1632 960 001")).display == "01632 960001"
    assert checked_phone(FeedPhone(number="01632 960001", extension="12")).href == "tel:+441632960001;ext=12"
    assert checked_phone(FeedPhone(number="ring the office")) is None
    assert checked_phone(FeedPhone(number="01632 96")) is None
    assert checked_phone(FeedPhone(number="01632 960001", type="fax")) is None
    assert https_url("https://example.org/a?b=c") == "https://example.org/a?b=c"
    for bad in ["http://example.org", "javascript:alert(1)", "https://u:p@example.org", 'https://e.org/"x', "https://"]:
        assert https_url(bad) is None, bad


def test_descriptions_lose_their_markup_and_give_one_line() -> None:
    assert plain("<p>Fun &amp; games</p>\n<ul><li>Tuesdays</li></ul>", 100) == "Fun & games Tuesdays"
    assert summary_of("First sentence here. Second one.") == "First sentence here."
    assert summary_of("word " * 100).endswith("…") and len(summary_of("word " * 100) or "") <= 160


def test_a_service_needs_id_name_and_status() -> None:
    for raw, field in [({"name": "x", "status": "active"}, "id"), ({"id": "1", "status": "active"}, "name"),
                       ({"id": "1", "name": "x"}, "status"), ({"id": "1", "name": "x", "status": "open"}, "status")]:
        with pytest.raises(Exception, match=field):
            parse_service(raw)
