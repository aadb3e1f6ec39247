"""Property-based run of schemathesis against the app's own OpenAPI document: no server errors.

The reduced run here keeps the suite fast; FLOCKID_SCHEMATHESIS_EXAMPLES raises the examples per
operation for the full run (>= 2,000 cases), e.g.:
    FLOCKID_SCHEMATHESIS_EXAMPLES=30 .venv/bin/pytest tests/api/test_api_schemathesis.py -q -s
and FLOCKID_SCHEMATHESIS_DB=postgres runs it against the PostgreSQL server instead of SQLite."""

from __future__ import annotations

import os
from collections import Counter

import pytest
import schemathesis
from api_testkit import T0, bird, make_tenant, post_report
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

EXAMPLES = int(os.environ.get("FLOCKID_SCHEMATHESIS_EXAMPLES", "4"))
BACKEND = os.environ.get("FLOCKID_SCHEMATHESIS_DB", "sqlite")
CASES: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()


@pytest.fixture(scope="module")
def st_env(tmp_path_factory, request):  # type: ignore[no-untyped-def]
    from api_env import build_env

    if BACKEND == "postgres":
        url = request.getfixturevalue("pg_url")
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('st') / 'st.db'}"
    env = build_env(BACKEND, url)
    with env.client as c:
        t = make_tenant(c, env.admin_key)
        post_report(c, t.device, t.device.flock(T0, birds=[bird(1, T0)]))
    env.client.headers["Authorization"] = f"Bearer {env.admin_key}"
    yield env
    total = sum(CASES.values())
    print(f"\nschemathesis ({BACKEND}, {EXAMPLES} examples/operation/mode): {total} cases over "
          f"{len(CASES)} operations; statuses {dict(sorted(STATUSES.items()))}")


def test_no_server_errors(st_env) -> None:  # type: ignore[no-untyped-def]
    """Every operation, valid (positive) and invalid (negative) generated requests, admin key attached:
    not one 5xx. (schemathesis' pytest plugin does not load under pytest 9, so hypothesis drives the
    schemathesis strategies directly.)"""
    from hypothesis import given

    schema = schemathesis.openapi.from_asgi("/openapi.json", st_env.app)
    headers = {"Authorization": f"Bearer {st_env.admin_key}"}
    failures: list[str] = []
    for result in schema.get_all_operations():
        op = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=op.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def run(case) -> None:  # type: ignore[no-untyped-def]
                response = case.call(headers=headers)
                CASES[f"{case.method} {case.path}"] += 1
                STATUSES[response.status_code] += 1
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                    f"{response.text[:200]}")

            try:
                run()
            except Unsatisfiable:
                if mode is GenerationMode.POSITIVE:
                    raise
                # no parameters or body to make invalid (e.g. GET /healthz)
    assert sum(CASES.values()) >= len(CASES) * 2
    assert not failures, "\n".join(failures[:20])
