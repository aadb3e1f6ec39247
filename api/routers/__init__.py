"""Thin HTTP layer: parse, call a service, shape the response."""

from api.schemas.common import Problem

PROBLEM_CONTENT = {"application/problem+json": {"schema": Problem.model_json_schema()}}


def problems(*codes: int) -> dict[int | str, dict]:
    """OpenAPI `responses` entries for the problem+json errors an endpoint can return."""
    return {code: {"description": "problem details", "content": PROBLEM_CONTENT} for code in (401, 422, *codes)}
