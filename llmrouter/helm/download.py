"""Robust HTTP transfer of HELM files: timeouts, retries with backoff, atomic validated files.

Only the Python standard library (urllib) is used: HELM's bucket is plain anonymous HTTPS.
A file counts as downloaded only once it parsed as JSON; it is streamed to a temporary file
beside its target and renamed into place, so an interrupted transfer leaves nothing behind.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from llmrouter.artifacts import InputError, atomic_path, commit
from llmrouter.helm import reader
from llmrouter.helm.reader import DISPLAY_FILE, STATS_FILE

CHUNK_BYTES = 1 << 20
OFFLINE_HINT = ('To run offline on a local table: make run ARGS="--configfile '
                'config/helm_mmlu.yaml"')
# A run's download record (results/helm/downloads/...), one row: `download_record` writes it,
# llmrouter.helm.convert reads it.
DOWNLOAD_COLUMNS = {"run": pl.String, "suite": pl.String, "status": pl.String,
                    "folder": pl.String, "files": pl.List(pl.String), "reason": pl.String,
                    "requests": pl.Int64, "retries": pl.Int64, "bytes": pl.Int64,
                    "cached": pl.Int64, "seconds": pl.Float64}


class HelmUnreachable(InputError):
    """HELM's server cannot be reached at all (no network, wrong host)."""


# 4xx answers that say "not now" rather than "not here": rate limits and request timeouts.
RETRY_STATUSES = frozenset({408, 425, 429})
# The longest Retry-After honoured: a server asking for more gets a retry sooner anyway.
MAX_RETRY_AFTER_S = 120.0


class MissingFile(Exception):
    """The server answered 404 (or another 4xx but 408, 425, 429): the file is not there."""

    def __init__(self, url: str, status: int):
        super().__init__(f"{url}: HTTP {status}")
        self.url, self.status = url, status


class BrokenFile(Exception):
    """The file could not be fetched intact after every retry (5xx, timeouts, bad JSON)."""


@dataclass(frozen=True)
class Transfer:
    """Retry policy: seconds per socket operation, retries after the first try, backoff base."""

    timeout_s: float = 60.0
    retries: int = 4
    backoff_s: float = 1.0


def transfer_settings(helm: Mapping[str, Any]) -> Transfer:
    """The retry policy of the `helm` config section (timeout_s, retries, backoff_s).

    The scripts read it from the config, not from rule params: how patiently a file is
    fetched does not change the file, so changing it must not rerun every download and, after
    them, the whole workflow.
    """
    return Transfer(timeout_s=float(helm["timeout_s"]), retries=int(helm["retries"]),
                    backoff_s=float(helm["backoff_s"]))


@dataclass
class FetchStats:
    """What fetching cost, for the progress line: requests, retries, bytes, cached files."""

    requests: int = 0
    retries: int = 0
    bytes: int = 0
    cached: int = 0
    errors: list[str] = field(default_factory=list)


def file_url(root: str, *components: str) -> str:
    """`root` joined with percent-encoded path components (run names keep `:` `,` `=`)."""
    return "/".join([root.rstrip("/"), *(urllib.parse.quote(c, safe="") for c in components)])


def project_roots(base_url: str, project: str, legacy_root: bool = False) -> list[str]:
    """URL roots to try in order: `{base}/{project}/benchmark_output`, then, for Classic's
    pre-2026 layout, `{base}/benchmark_output`."""
    roots = [f"{base_url.rstrip('/')}/{project}/benchmark_output"]
    if legacy_root:
        roots.append(f"{base_url.rstrip('/')}/benchmark_output")
    return roots


def valid_json(path: Path) -> bool:
    """Whether `path` holds one complete JSON document."""
    try:
        with open(path, "rb") as handle:
            json.load(handle)
    except (ValueError, OSError):
        return False
    return True


def retry_after_s(value: str | None) -> float:
    """Seconds a Retry-After header asks to wait (0 when absent or a date), capped at
    MAX_RETRY_AFTER_S."""
    try:
        seconds = float(value) if value is not None else 0.0
    except ValueError:  # an HTTP date: the exponential backoff decides
        return 0.0
    if seconds != seconds:  # NaN
        return 0.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _unreachable(error: BaseException) -> bool:
    """Errors that no retry will cure: the host name does not resolve."""
    reason = getattr(error, "reason", error)
    return isinstance(reason, socket.gaierror)


def fetch_json(url: str, dest: str | Path, transfer: Transfer, stats: FetchStats) -> Path:
    """Download `url` to `dest` unless a valid copy is there; return `dest`.

    Retries 5xx answers, rate limits (429, 408, 425), broken connections, timeouts and
    incomplete JSON with exponential backoff (backoff_s * 2**(i - 1) before retry i, or the
    server's Retry-After when longer, up to MAX_RETRY_AFTER_S). Raises MissingFile on any other
    4xx (no retry), HelmUnreachable when the host does not resolve, BrokenFile when every try
    failed. Never leaves a partial file at `dest`.
    """
    dest = Path(dest)
    if dest.exists() and valid_json(dest):
        stats.cached += 1
        return dest
    last = "no attempt"
    asked_wait = 0.0
    for attempt in range(transfer.retries + 1):
        if attempt:
            stats.retries += 1
            time.sleep(max(transfer.backoff_s * 2 ** (attempt - 1), asked_wait))
            asked_wait = 0.0
        tmp, final = atomic_path(dest)
        received = False
        try:
            stats.requests += 1
            request = urllib.request.Request(url, headers={"User-Agent": "llmrouter-helm/0.1"})
            with urllib.request.urlopen(request, timeout=transfer.timeout_s) as response:
                size = 0
                with open(tmp, "wb") as out:
                    while chunk := response.read(CHUNK_BYTES):
                        out.write(chunk)
                        size += len(chunk)
            expected = response.headers.get("Content-Length")
            if expected is not None and int(expected) != size:
                last = f"connection closed after {size} of {expected} bytes"
            elif not valid_json(tmp):
                last = f"incomplete or invalid JSON ({size} bytes)"
            else:
                last, received = "", True
        except urllib.error.HTTPError as error:
            if error.code < 500 and error.code not in RETRY_STATUSES:
                raise MissingFile(url, error.code) from None
            last = f"HTTP {error.code}"
            asked_wait = retry_after_s(error.headers.get("Retry-After") if error.headers else None)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            if _unreachable(error):
                raise HelmUnreachable(
                    f"HELM cannot be reached at {url} ({getattr(error, 'reason', error)}). "
                    f"{OFFLINE_HINT}") from None
            last = f"{type(error).__name__}: {getattr(error, 'reason', error)}"
        finally:
            if not received:
                tmp.unlink(missing_ok=True)
        if received:
            # Outside the handlers above: a disk that fails here is no network error to retry.
            try:
                commit(tmp, final)
            finally:
                tmp.unlink(missing_ok=True)
            stats.bytes += size
            return final
        logging.warning("%s: %s (try %d)", url, last, attempt + 1)
    stats.errors.append(f"{url}: {last}")
    raise BrokenFile(f"{url}: {last} after {transfer.retries + 1} tries")


def fetch_first(roots: list[str], components: list[str], dest: Path, transfer: Transfer,
                stats: FetchStats) -> Path:
    """fetch_json from the first root that has the file (404 moves on to the next root)."""
    missing = None
    for root in roots:
        try:
            return fetch_json(file_url(root, *components), dest, transfer, stats)
        except MissingFile as error:
            missing = error
    assert missing is not None
    raise missing


def fetch_index(roots: list[str], release: str | None, suite: str | None, dest: Path,
                transfer: Transfer) -> Path:
    """Download a release's `runs_to_run_suites.json` or a suite's `run_specs.json` to `dest`.

    Raises HelmUnreachable (with how to run offline) when the server cannot be reached, and
    InputError naming the URL when the index is missing or broken.
    """
    components = (["releases", release, "runs_to_run_suites.json"] if release
                  else ["runs", suite or "", "run_specs.json"])
    stats = FetchStats()
    try:
        return fetch_first(roots, components, dest, transfer, stats)
    except MissingFile as error:
        raise InputError(f"HELM index {error.url} does not exist (HTTP {error.status}): "
                         "check helm.base_url, helm.project and helm.release/suite") from None
    except BrokenFile as error:
        if stats.requests and all("URLError" in e or "ConnectionRefused" in e
                                  for e in stats.errors):
            raise HelmUnreachable(f"HELM cannot be reached: {error}. {OFFLINE_HINT}") from None
        raise InputError(f"HELM index could not be downloaded: {error}") from None


# The files of one run, in order; each entry lists alternatives, the first that exists wins.
RUN_FILES: list[tuple[str, ...]] = [
    ("run_spec.json",),
    ("instances.json", "scenario_state.json"),
    (DISPLAY_FILE, STATS_FILE),
]


@dataclass
class RunDownload:
    """Outcome of one run's download: status ok | missing | broken, files, cost."""

    run: str
    suite: str
    status: str
    files: list[str]
    reason: str
    stats: FetchStats
    seconds: float

    def line(self) -> str:
        """The progress line for this run."""
        cost = (f"{self.stats.bytes / 1e6:.2f} MB in {self.stats.requests} requests"
                f" ({self.stats.retries} retries), {self.stats.cached} files already here")
        tail = f": {self.reason}" if self.reason else ""
        return f"[helm] {self.status:7s} {self.run} ({cost}, {self.seconds:.1f} s){tail}"


def download_run(roots: list[str], suite: str, run: str, folder: str | Path,
                 transfer: Transfer, metrics: tuple[str, ...] = ()) -> RunDownload:
    """Download the files one run needs into `folder` (kept across attempts).

    Per entry of RUN_FILES the first alternative the server has is fetched. display_predictions
    holds only the metrics HELM's schema shows for the run's groups: when it has none of
    `metrics` (the scenario's candidates, index.metric_candidates), per_instance_stats.json,
    with every metric the run computed, is fetched too. A run whose file is absent (4xx) is
    `missing`; one whose file stays broken after retries is `broken`. HelmUnreachable
    propagates: no run can be fetched then.
    """
    folder = Path(folder)
    stats = FetchStats()
    start = time.monotonic()
    files: list[str] = []
    status, reason = "ok", ""
    for alternatives in RUN_FILES:
        found, status, reason = _fetch_any(roots, suite, run, folder, alternatives, transfer,
                                           stats)
        if found is None:
            break
        files.append(found)
    if (status == "ok" and metrics and files[-1] == DISPLAY_FILE
            and not displays_any(folder / DISPLAY_FILE, metrics)):
        found, status, reason = _fetch_any(roots, suite, run, folder, (STATS_FILE,), transfer,
                                           stats)
        if found is not None:
            files.append(found)
        elif status == "missing":
            reason = f"{DISPLAY_FILE} has none of the metrics {list(metrics)}, and {reason}"
    return RunDownload(run=run, suite=suite, status=status, files=files if status == "ok" else [],
                       reason=reason, stats=stats, seconds=time.monotonic() - start)


def _fetch_any(roots: list[str], suite: str, run: str, folder: Path,
               alternatives: tuple[str, ...], transfer: Transfer,
               stats: FetchStats) -> tuple[str | None, str, str]:
    """(the alternative now in `folder` or None, status, reason): a valid copy already there,
    else the first the server has."""
    for name in alternatives:
        if (folder / name).exists() and valid_json(folder / name):
            stats.cached += 1
            return name, "ok", ""
    tried = []
    for name in alternatives:
        try:
            fetch_first(roots, ["runs", suite, run, name], folder / name, transfer, stats)
            return name, "ok", ""
        except MissingFile as error:
            tried.append(f"{name}: HTTP {error.status}")
        except BrokenFile as error:
            return None, "broken", str(error)
    return None, "missing", "; ".join(tried)


def displays_any(path: Path, metrics: tuple[str, ...]) -> bool:
    """Whether the reader finds one of `metrics` in the display_predictions.json at `path`
    (reader.read_display_predictions, so the two never disagree). A file the reader rejects
    counts as yes: it names what is wrong when the run is read."""
    with open(path, "rb") as handle:
        rows = json.load(handle)
    for metric in metrics:
        try:
            reader.read_display_predictions(rows, metric, str(path))
            return True
        except reader.MetricMissing:
            continue
        except InputError:
            return True
    return False


def download_record(result: RunDownload, folder: str | Path, on_missing: str) -> pl.DataFrame:
    """The download record (DOWNLOAD_COLUMNS, one row) of a run downloaded into `folder`.

    on_missing: the config's helm.on_missing; with "fail" a run that is not ok raises
    InputError, with "skip" it is recorded, and left out when its dataset is converted.
    """
    if result.status != "ok" and on_missing == "fail":
        raise InputError(f"HELM run {result.run} is {result.status} ({result.reason}); "
                         "helm.on_missing: skip would skip it, helm.runs.exclude leaves it out")
    record = {"run": result.run, "suite": result.suite, "status": result.status,
              "folder": str(folder), "files": result.files, "reason": result.reason,
              "requests": result.stats.requests, "retries": result.stats.retries,
              "bytes": result.stats.bytes, "cached": result.stats.cached,
              "seconds": result.seconds}
    return pl.DataFrame([record], schema=DOWNLOAD_COLUMNS)
