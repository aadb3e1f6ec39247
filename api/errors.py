"""Domain errors rendered as RFC 9457 problem+json by `api.app`.

Services raise these; routers stay thin and never build error responses themselves.
"""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://flockid.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemError(Exception):
    """An error with an HTTP status and a stable slug (`type` = PROBLEM_BASE + slug)."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str, *, slug: str | None = None, status: int | None = None,
                 title: str | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if slug is not None:
            self.slug = slug
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        self.extra = extra or {}

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class Unauthenticated(ProblemError):
    status, slug, title = 401, "unauthenticated", "Missing or invalid API key"


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Not allowed for this API key"


class NotFound(ProblemError):
    # Objects of other tenants are reported as not found, so ids do not leak across organisations.
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict"


class Unprocessable(ProblemError):
    status, slug, title = 422, "unprocessable", "Unprocessable request"


class TooLarge(ProblemError):
    status, slug, title = 413, "request-too-large", "Request body too large"


class RateLimited(ProblemError):
    status, slug, title = 429, "rate-limited", "Too many requests"


def problem(status: int, slug: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return ProblemError(detail, slug=slug, status=status, title=title, extra=extra).to_problem()
