"""Signed webhook delivery of new alerts to the organisation's webhook_url, with retries.

Body: the alert JSON. Header `X-FlockID-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
so a receiver can check origin and freshness. Delivery runs on a small thread pool after the
transaction commits; an alert is never lost by a failed delivery (its webhook_status says 'failed')."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select

from api.db.models import Alert, Organization

log = logging.getLogger("flockid.api.webhooks")


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class WebhookDispatcher:
    def __init__(self, sessionmaker: Any, secret: bytes, *, timeout_s: float, retries: int,
                 backoff_s: float = 0.5) -> None:
        self.sessionmaker, self.secret = sessionmaker, secret
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self._pool: ThreadPoolExecutor | None = None

    def notify(self, alert_ids: list[int]) -> None:
        if not alert_ids:
            return
        with self.sessionmaker() as session:
            has_hook = session.scalar(select(Organization.id).join(Alert, Alert.org_id == Organization.id)
                                      .where(Alert.id.in_(alert_ids), Organization.webhook_url.is_not(None))
                                      .limit(1))
        if has_hook is None:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="webhook")
        self._pool.submit(self.deliver, list(alert_ids))

    def deliver(self, alert_ids: list[int]) -> dict[int, str]:
        import httpx

        outcome: dict[int, str] = {}
        with self.sessionmaker() as session:
            rows = session.execute(select(Alert, Organization.webhook_url).join(
                Organization, Organization.id == Alert.org_id).where(Alert.id.in_(alert_ids))).all()
            for alert, url in rows:
                if not url:
                    continue
                body = json.dumps({
                    "id": alert.id, "kind": alert.kind, "severity": alert.severity, "org_id": alert.org_id,
                    "farm_id": alert.farm_id, "loan_id": alert.loan_id, "device_id": alert.device_id,
                    "message": alert.message, "report_ids": alert.report_ids,
                    "created_at": alert.created_at.isoformat()}, sort_keys=True).encode()
                status = "failed"
                for attempt in range(self.retries + 1):
                    ts = int(time.time())
                    try:
                        resp = httpx.post(url, content=body, timeout=self.timeout_s, headers={
                            "Content-Type": "application/json",
                            "X-FlockID-Signature": signature(self.secret, ts, body),
                            "X-FlockID-Delivery": f"{alert.id}-{attempt}"})
                        if 200 <= resp.status_code < 300:
                            status = "sent"
                            break
                        log.warning("webhook %s for alert %s: HTTP %s", url, alert.id, resp.status_code)
                    except httpx.HTTPError as exc:
                        log.warning("webhook %s for alert %s: %s", url, alert.id, exc)
                    time.sleep(self.backoff_s * (2 ** attempt))
                alert.webhook_status = status
                outcome[alert.id] = status
            session.commit()
        return outcome

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
