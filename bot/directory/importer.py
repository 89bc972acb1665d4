"""Imports an Open Referral UK directory into the local store: ``make import-services FROM=...``.

``FROM`` is one of:

- the address of an Open Referral UK API (``https://.../`` or ``https://.../services``): every page of
  ``/services?page=N&per_page=...`` is fetched (with ``full=true``, which some feeds honour); a list item
  that comes without its child records (phones, contacts, locations, ...) is fetched whole from
  ``/services/{id}``. Plain ``http`` is refused except on this machine (127.0.0.1, localhost);
- a JSON file: one page (``{"contents": [...]}``), a list of services, or one service;
- a folder of such files (read in name order; records with the same ``id`` are merged, so a folder can
  hold list pages and full ``/services/{id}`` records side by side).

Fetching is bounded (a time limit per request, a size limit per response, a page limit, a service
limit) and retried (network errors, timeouts, HTTP 429 and 5xx). Every page that cannot be read is
reported with its reason. Each service is validated (``bot/directory/model.py``); one that fails is
skipped with its reason, and the rest are kept.

The store is replaced only by a good import: every page read, at least one valid service, and (unless
``--force``) not fewer than half the services of the store it replaces. Otherwise the old store stays as
it was and the command exits with status 1, so cron reports it.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from pydantic import ValidationError

from bot.directory.model import (
    SPECIFICATION,
    STORE_FORMAT,
    Directory,
    FeedPage,
    Skip,
    StoredService,
    describe_errors,
    is_drama_number,
    parse_service,
)
from bot.directory.store import DirectoryError, read_directory, services_path, write_directory

CHILD_RECORDS = ("phones", "contacts", "service_at_locations", "service_areas", "schedules", "organization")
LOOPBACK_HOSTS = {"localhost"}
USER_AGENT = "lancashire-cyp-assistant-directory-import/1"
RETRY_STATUSES = {429, 500, 502, 503, 504}


class ImportFailed(Exception):
    """The import cannot replace the store; the message says why, and ``report`` what was read."""

    def __init__(self, message: str, report: Optional["Report"] = None) -> None:
        """Keeps the report of what was read (if the import got that far)."""
        super().__init__(message)
        self.report = report


class FetchError(Exception):
    """One request failed, after its retries; the message says how."""


@dataclass
class Limits:
    """Bounds on fetching: a council's feed is a few thousand services at most."""

    timeout: float = 15.0
    tries: int = 3
    backoff: float = 1.0
    per_page: int = 100
    max_pages: int = 200
    max_services: int = 10000
    max_bytes: int = 20_000_000
    min_ratio: float = 0.5


@dataclass
class Report:
    """What an import read, kept and skipped, and why."""

    source: str
    read: int = 0
    skipped: List[Tuple[str, str]] = field(default_factory=list)
    page_errors: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    services: List[StoredService] = field(default_factory=list)
    drama_numbers: int = 0

    @property
    def valid(self) -> int:
        """How many services were kept."""
        return len(self.services)

    def counts(self) -> Dict[str, int]:
        """Read, valid and skipped counts."""
        return {"read": self.read, "valid": self.valid, "skipped": len(self.skipped)}

    def lines(self) -> List[str]:
        """The report, as printed."""
        out = [f"read {self.read}, valid {self.valid}, skipped {len(self.skipped)}"]
        out += [f"  skipped {what}: {why}" for what, why in self.skipped]
        out += [f"  note: {note}" for note in self.notes]
        if self.drama_numbers:
            out.append(
                f"  warning: {self.drama_numbers} phone number(s) are in Ofcom's ranges for drama (fictional). "
                "That is right for a test feed and wrong for a live one."
            )
        return out


# ----- fetching ----------------------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Whether a host name is this machine."""
    if host.lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_address(url: str) -> None:
    """Refuses anything but https (http only on this machine), and addresses with credentials in them."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ImportFailed(f"{url!r} is not a web address (https://...), a file or a folder")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ImportFailed(f"{shown_address(url)}: use https (plain http is only allowed on this machine)")


def shown_address(url: str) -> str:
    """The address without credentials, query or fragment: what the assistant tells people."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class Fetcher:
    """GETs JSON with a time limit, a size limit and retries."""

    def __init__(self, limits: Limits, sleep: Callable[[float], None] = time.sleep) -> None:
        """Creates a fetcher with these limits; ``sleep`` is replaced in tests."""
        self.limits = limits
        self.sleep = sleep

    def get_json(self, url: str) -> Any:
        """Returns the parsed JSON at ``url``.

        Raises:
            FetchError: saying what went wrong (after retrying what can be retried).
        """
        last = ""
        for attempt in range(1, self.limits.tries + 1):
            try:
                body = self._get(url)
            except _Retry as error:
                last = str(error)
                if attempt < self.limits.tries:
                    self.sleep(self.limits.backoff * 2 ** (attempt - 1))
                continue
            try:
                return json.loads(body.decode("utf-8-sig"))
            except (UnicodeDecodeError, ValueError) as error:
                raise FetchError(f"not valid JSON ({error})") from error
        raise FetchError(f"{last} (tried {self.limits.tries} times)")

    def _get(self, url: str) -> bytes:
        request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": USER_AGENT})
        deadline = time.monotonic() + self.limits.timeout
        try:
            with urllib.request.urlopen(request, timeout=self.limits.timeout) as response:  # noqa: S310 - checked
                check_address(response.geturl())  # a redirect must not leave https
                chunks: List[bytes] = []
                size = 0
                while True:
                    if time.monotonic() > deadline:
                        raise _Retry(f"timed out after {self.limits.timeout:g} s")
                    chunk = response.read(65536)
                    if not chunk:
                        return b"".join(chunks)
                    size += len(chunk)
                    if size > self.limits.max_bytes:
                        raise FetchError(f"response larger than {self.limits.max_bytes} bytes")
                    chunks.append(chunk)
        except urllib.error.HTTPError as error:
            if error.code in RETRY_STATUSES:
                raise _Retry(f"HTTP {error.code}") from error
            raise FetchError(f"HTTP {error.code}") from error
        except ImportFailed as error:
            raise FetchError(f"redirected to a refused address ({error})") from error
        except (socket.timeout, TimeoutError) as error:
            raise _Retry(f"timed out after {self.limits.timeout:g} s") from error
        except urllib.error.URLError as error:
            if isinstance(error.reason, (socket.timeout, TimeoutError)):
                raise _Retry(f"timed out after {self.limits.timeout:g} s") from error
            raise _Retry(f"cannot connect ({error.reason})") from error
        except (ConnectionError, OSError) as error:
            raise _Retry(f"connection failed ({error})") from error


class _Retry(Exception):
    """A failure worth trying again."""


def with_query(url: str, **params: Any) -> str:
    """The URL with these query parameters set (others kept)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update({k: str(v) for k, v in params.items()})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def services_endpoint(url: str) -> str:
    """``.../services`` for an API's base address (or the address itself if it already ends so)."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if not path.endswith("/services"):
        path = f"{path}/services"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def has_child_records(item: Dict[str, Any]) -> bool:
    """Whether a list item carries any child records (a list page "need not contain" them)."""
    return any(key in item for key in CHILD_RECORDS)


def fetch_records(url: str, limits: Limits, report: Report, fetcher: Fetcher) -> Iterator[Tuple[str, Any]]:
    """Yields (where, raw service) for every service of the API, fetching each in full when needed."""
    endpoint = services_endpoint(url)
    page, total_pages = 1, None
    while True:
        if page > limits.max_pages:
            report.page_errors.append(f"stopped after {limits.max_pages} pages (the limit; see --max-pages)")
            return
        page_url = with_query(endpoint, page=page, per_page=limits.per_page, full="true")
        try:
            data = fetcher.get_json(page_url)
            if not isinstance(data, dict):
                raise FetchError(f"not a page of services but a JSON {type(data).__name__}")
            listing = FeedPage.parse_obj(data)
        except FetchError as error:
            report.page_errors.append(f"page {page} ({shown_address(page_url)}?page={page}): {error}")
            listing = None
        except ValidationError as error:
            report.page_errors.append(f"page {page}: not an Open Referral page: {describe_errors(error)}")
            listing = None
        if listing is None:
            if total_pages is None or page >= total_pages:
                return
            page += 1
            continue
        if total_pages is None:
            total_pages = listing.total_pages or 1
        for item in listing.contents:
            where = f"page {page}, {_label(item)}"
            if isinstance(item, dict) and not has_child_records(item) and item.get("id"):
                detail_url = f"{endpoint}/{quote(str(item['id']), safe='')}"
                try:
                    detail = fetcher.get_json(detail_url)
                except FetchError as error:
                    reason = f"its full record ({shown_address(detail_url)}) could not be read: {error}"
                    yield where, _Unreadable(reason)
                    continue
                item = {**item, **detail} if isinstance(detail, dict) else detail
            yield where, item
        if listing.empty or listing.last_page or page >= total_pages or not listing.contents:
            return
        page += 1


@dataclass
class _Unreadable:
    reason: str


def _label(item: Any) -> str:
    if isinstance(item, dict):
        name = item.get("name")
        ident = item.get("id")
        if ident and name:
            return f'service {ident} "{name}"'
        if ident:
            return f"service {ident}"
    return "a service"


# ----- local files ---------------------------------------------------------------------------------------------


def read_local(path: Path, report: Report) -> Iterator[Tuple[str, Any]]:
    """Yields (where, raw service) from a JSON file or a folder of them; records with one id are merged."""
    files = sorted(p for p in path.rglob("*.json") if p.is_file()) if path.is_dir() else [path]
    if not files:
        raise ImportFailed(f"{path}: no .json files in this folder")
    merged: Dict[str, Dict[str, Any]] = {}
    order: List[Tuple[str, Any]] = []
    for file in files:
        try:
            data = json.loads(file.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            report.page_errors.append(f"{file}: not valid JSON ({error})")
            continue
        if isinstance(data, dict) and "contents" in data:
            try:
                items: List[Any] = FeedPage.parse_obj(data).contents
            except ValidationError as error:
                report.page_errors.append(f"{file}: not an Open Referral page: {describe_errors(error)}")
                continue
        elif isinstance(data, list):
            items = data
        else:
            items = [data]
        for item in items:
            key = str(item.get("id")) if isinstance(item, dict) and item.get("id") else None
            if key is None:
                order.append((f"{file.name}, {_label(item)}", item))
            elif key in merged:
                merged[key].update(item)
            else:
                merged[key] = dict(item)
                order.append((f"{file.name}, {_label(item)}", merged[key]))
    yield from order


# ----- the import ------------------------------------------------------------------------------------------------


def collect(source: str, limits: Limits, fetcher: Optional[Fetcher] = None) -> Report:
    """Reads every service of a feed, folder or file, and validates each.

    Raises:
        ImportFailed: if the source is not something that can be read at all.
    """
    local = Path(source)
    if local.exists():
        report = Report(source=str(local.resolve()))
        records = read_local(local, report)
    else:
        check_address(source)
        report = Report(source=shown_address(source))
        records = fetch_records(source, limits, report, fetcher or Fetcher(limits))
    seen: Dict[str, int] = {}
    for where, raw in records:
        report.read += 1
        if report.read > limits.max_services:
            report.page_errors.append(f"more than {limits.max_services} services (the limit; see --max-services)")
            break
        if isinstance(raw, _Unreadable):
            report.skipped.append((where, raw.reason))
            continue
        try:
            service, notes = parse_service(raw)
        except Skip as reason:
            report.skipped.append((where, str(reason)))
            continue
        if service.id in seen:
            report.skipped.append((where, "the same id came twice; the later record is kept"))
            report.services[seen[service.id]] = service
            continue
        seen[service.id] = len(report.services)
        report.services.append(service)
        report.notes += [f"{where}: {note}" for note in notes]
        report.drama_numbers += sum(is_drama_number(p.href) for p in service.phones)
    return report


def run_import(
    source: str,
    store: Path,
    limits: Limits,
    shown_source: Optional[str] = None,
    force: bool = False,
    now: Optional[datetime] = None,
    fetcher: Optional[Fetcher] = None,
) -> Tuple[Report, Directory]:
    """Imports ``source`` into ``store``, replacing it only if the import is good.

    Args:
        source: an https address of an Open Referral UK API, or a JSON file or folder.
        store: the store file to replace.
        limits: bounds on fetching.
        shown_source: the address the assistant names as the source (default: the address fetched).
        force: replace the store even if the new import has far fewer services than the old one.
        now: the import time (for tests).
        fetcher: replaces the HTTP fetcher (for tests).

    Returns:
        The report and the directory written.

    Raises:
        ImportFailed: with the report's reasons; the store is left as it was.
    """
    report = collect(source, limits, fetcher)
    problems = list(report.page_errors)
    if not problems and report.valid == 0:
        problems.append("no valid services: an empty import would replace the directory with nothing")
    if not problems and not force:
        previous = _previous(store)
        if previous is not None and report.valid < limits.min_ratio * len(previous.services):
            problems.append(
                f"only {report.valid} valid services, against {len(previous.services)} in the store: "
                f"fewer than {limits.min_ratio:.0%}. Check the feed, then run again with --force (FORCE=1) "
                "if the drop is real"
            )
    if problems:
        raise ImportFailed("\n".join(problems), report)
    directory = Directory(
        format=STORE_FORMAT,
        specification=SPECIFICATION,
        source=shown_source or report.source,
        imported_at=(now or datetime.now(timezone.utc)).replace(microsecond=0),
        counts=report.counts(),
        services=report.services,
    )
    write_directory(store, directory)
    return report, directory


def _previous(store: Path) -> Optional[Directory]:
    try:
        return read_directory(store)
    except DirectoryError:
        return None


def main(argv: List[str]) -> int:
    """Command line: ``python -m bot.directory.importer FROM [--source ADDRESS] [--force] ...``."""
    parser = argparse.ArgumentParser(description="Import an Open Referral UK service directory.")
    parser.add_argument("source", help="https address of the API, or a JSON file or folder")
    parser.add_argument("--store", type=Path, default=None, help="the store file (default: $SERVICES_FILE)")
    parser.add_argument("--source-address", dest="shown", help="the address to name as the source")
    parser.add_argument("--force", action="store_true", help="accept a much smaller import than the last one")
    defaults = Limits()
    parser.add_argument("--timeout", type=float, default=defaults.timeout, help="seconds per request")
    parser.add_argument("--tries", type=int, default=defaults.tries, help="tries per request")
    parser.add_argument("--per-page", type=int, default=defaults.per_page)
    parser.add_argument("--max-pages", type=int, default=defaults.max_pages)
    parser.add_argument("--max-services", type=int, default=defaults.max_services)
    args = parser.parse_args(argv)
    limits = Limits(
        timeout=args.timeout,
        tries=max(1, args.tries),
        per_page=args.per_page,
        max_pages=args.max_pages,
        max_services=args.max_services,
    )
    store = args.store or services_path()
    print(f"Importing {args.source} ({SPECIFICATION}) into {store}")
    try:
        report, directory = run_import(args.source, store, limits, shown_source=args.shown, force=args.force)
    except ImportFailed as error:
        for line in error.report.lines() if error.report else []:
            print(line)
        print(f"error: the import failed; the store was left as it was.\n{error}", file=sys.stderr)
        return 1
    for line in report.lines():
        print(line)
    print(
        f"Imported {directory.counts['valid']} services from {directory.source} "
        f"at {directory.imported_at.isoformat()} into {store}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
