"""Uploader: sends outbox rows to `POST /v1/reports` strictly in seq order, one at a time.

(device_id, seq) is the idempotency key, so re-sending after a crash between "API stored it" and
"outbox marked it sent" is harmless: the API answers 200 for an exact duplicate.

Response rules:
- 201 stored, 200 exact duplicate -> mark sent, move on.
- 409 -> read the problem+json. If the API says it is missing earlier documents (a chain gap:
  slug contains "gap", or the body names `expected_seq` lower than ours) and the outbox still holds
  them, they are re-queued and sent again. Anything else (conflicting duplicate, prev-hash mismatch)
  means the two sides disagree about the chain: the row is marked `conflict`, uploads stop and the
  error is logged and exported as a metric; a person must look (nothing is skipped or re-signed).
- 429, 5xx, timeouts, connection errors -> retry the same row with exponential back-off and full
  jitter (base..max), honouring Retry-After.
- 401/403/422/413/other 4xx -> the same row is retried at the maximum back-off (a key or schema fix
  on the API side lets the queue drain); it is never skipped, because a skipped seq breaks the chain.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from edge.outbox import Outbox, OutboxRow

log = logging.getLogger("edge.uploader")

MIN_REQUEST_S = 0.2  # the shortest request a deadline leaves: less cannot even connect


class StopFlag(Protocol):
    """What `drain` polls between rows: a threading.Event, or anything with the same `is_set()`."""

    def is_set(self) -> bool: ...


@dataclass
class UploadResult:
    seq: int
    status: int | None  # HTTP status, None for a transport error
    outcome: str  # sent | duplicate | retry | conflict | requeued | rejected
    detail: str = ""


class Uploader:
    def __init__(
        self,
        outbox: Outbox,
        url: str,
        api_key: str | None,
        *,
        timeout_s: float = 10.0,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 60.0,
        client: Any = None,
    ) -> None:
        import httpx

        self.outbox = outbox
        self.endpoint = url.rstrip("/") + "/v1/reports"
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.client = client or httpx.Client(timeout=timeout_s, headers=headers)
        self.timeout_s = timeout_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.failures = 0
        self.blocked: str | None = None  # set when a conflict stops the queue
        self.last_success: float | None = None
        self.last_result: UploadResult | None = None
        self.sent_total = 0
        self.duplicates_total = 0
        self.errors_total = 0
        self.next_wait = 0.0

    def close(self) -> None:
        self.client.close()

    def _backoff(self, retry_after: float | None = None, *, maximum: bool = False) -> float:
        self.failures += 1
        cap = min(self.backoff_max_s, self.backoff_base_s * (2 ** min(self.failures - 1, 30)))
        delay = self.backoff_max_s if maximum else random.uniform(self.backoff_base_s / 2, max(cap, 1e-3))
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max_s))
        return delay

    def send(self, row: OutboxRow, *, deadline: float | None = None) -> tuple[UploadResult, float]:
        """POST one row; returns the result and how long to wait before the next attempt. With a
        deadline (time.monotonic()), the request may not outlast it: a hung API cannot hold up a stop."""
        import httpx

        body = row.envelope.model_dump_json()
        try:
            if deadline is None:
                resp = self.client.post(self.endpoint, content=body)
            else:
                left = max(MIN_REQUEST_S, min(self.timeout_s, deadline - time.monotonic()))
                resp = self.client.post(self.endpoint, content=body, timeout=left)
        except httpx.HTTPError as exc:
            self.errors_total += 1
            self.outbox.mark_attempt(row.seq, f"transport: {exc!r}")
            return UploadResult(row.seq, None, "retry", repr(exc)), self._backoff()
        status = resp.status_code
        if status in (200, 201):
            self.outbox.mark_sent(row.seq)
            self.failures = 0
            self.last_success = time.time()
            self.sent_total += 1
            if status == 200:
                self.duplicates_total += 1
            return UploadResult(row.seq, status, "sent" if status == 201 else "duplicate"), 0.0
        self.errors_total += 1
        problem = _problem(resp)
        detail = f"{status} {problem.get('type', '')} {problem.get('detail', resp.text[:300])}"
        if status == 409:
            expected = problem.get("expected_seq")
            gap = "gap" in str(problem.get("type", "")) or (isinstance(expected, int) and expected < row.seq)
            if gap and isinstance(expected, int) and expected < row.seq and self.outbox.has_seq(expected):
                n = self.outbox.requeue_from(expected)
                self.outbox.mark_attempt(row.seq, detail)
                log.warning("api is missing seq %s..%s; requeued %d rows", expected, row.seq - 1, n)
                return UploadResult(row.seq, status, "requeued", detail), 0.0
            self.outbox.mark_attempt(row.seq, detail, conflict=True)
            self.blocked = detail
            log.critical("upload of seq %s conflicts with the API's chain; uploads stopped: %s", row.seq, detail)
            return UploadResult(row.seq, status, "conflict", detail), self.backoff_max_s
        self.outbox.mark_attempt(row.seq, detail)
        if status == 429 or status >= 500:
            retry = _retry_after(resp)
            body_retry = problem.get("retry_after_s")
            if retry is None and isinstance(body_retry, (int, float)):
                retry = float(body_retry)
            return UploadResult(row.seq, status, "retry", detail), self._backoff(retry)
        log.error("api rejected seq %s (%s); retrying at the maximum back-off", row.seq, detail)
        return UploadResult(row.seq, status, "rejected", detail), self._backoff(maximum=True)

    def drain(self, stop: StopFlag | None = None, *, deadline: float | None = None) -> int:
        """Send pending rows until the outbox is empty, stop is set, the deadline passes or a retry
        is needed (then `next_wait` says how long to back off); returns rows acknowledged. Never sleeps."""
        done = 0
        self.next_wait = 0.0
        while not (stop is not None and stop.is_set()) and self.blocked is None:
            if deadline is not None and time.monotonic() > deadline:
                break
            row = self.outbox.next_unsent()
            if row is None:
                break
            result, wait = self.send(row, deadline=deadline)
            self.last_result = result
            if result.outcome in ("sent", "duplicate"):
                done += 1
            elif wait > 0 or result.outcome != "requeued":
                self.next_wait = wait
                break
        return done

    def run(self, stop: threading.Event, wake: threading.Event | None = None, idle_s: float = 1.0) -> None:
        """Worker loop: drain; back off after a failure, otherwise sleep until woken (new row) or idle_s."""
        while not stop.is_set():
            if self.blocked is not None:
                stop.wait(self.backoff_max_s)
                continue
            try:
                self.drain(stop)
            except Exception:  # a bug here must not kill the thread that empties the outbox
                log.exception("uploader iteration failed")
                self.next_wait = self._backoff()
            if self.next_wait > 0:
                stop.wait(self.next_wait)
            elif wake is not None:
                wake.wait(idle_s)
                wake.clear()
            else:
                stop.wait(idle_s)


def _problem(resp: Any) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(resp: Any) -> float | None:
    value = resp.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
