"""`flockid api ...` and `flockid bench api`. FastAPI, SQLAlchemy and uvicorn load inside commands only."""

from __future__ import annotations

import typer

api_app = typer.Typer(no_args_is_help=True)

_DB_HELP = "database URL (default: FLOCKID_DATABASE_URL, else sqlite:///flockid.db)"


def _settings(database_url: str | None):  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from api.settings import Settings
    from flockid.console import fail

    try:
        return Settings(database_url=database_url) if database_url else Settings()
    except ValidationError as exc:
        fail(f"settings: {exc}")
        raise  # unreachable: fail exits


@api_app.command("migrate")
def migrate_command(
    database_url: str | None = typer.Option(None, "--database-url", help=_DB_HELP),
    revision: str = typer.Option("head", help="target revision ('head', or 'base' with --down)"),
    down: bool = typer.Option(False, "--down", help="downgrade to the revision instead"),
) -> None:
    """Create or upgrade the database schema (Alembic migrations)."""
    from api.db import migrate

    settings = _settings(database_url)
    if down:
        migrate.downgrade(settings.database_url, revision)
    else:
        migrate.upgrade(settings.database_url, revision)
    typer.echo(f"database at revision {migrate.current(settings.database_url)}")


@api_app.command("serve")
def serve_command(
    host: str = typer.Option("127.0.0.1", help="bind address"),
    port: int = typer.Option(8000, min=1, max=65535),
    database_url: str | None = typer.Option(None, "--database-url", help=_DB_HELP),
    migrate_first: bool = typer.Option(True, "--migrate/--no-migrate", help="run migrations before serving"),
    log_level: str = typer.Option("info"),
    access_log: bool = typer.Option(
        True, "--access-log/--no-access-log",
        help="uvicorn's line per request; at hundreds of reports a second it costs ingest throughput "
        "(`flockid bench api` serves without it)"),
) -> None:
    """Serve the lender API with uvicorn (one process)."""
    import uvicorn

    from api.app import create_app
    from api.db import migrate

    settings = _settings(database_url)
    if migrate_first:
        migrate.upgrade(settings.database_url)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, access_log=access_log)


@api_app.command("create-key")
def create_key_command(
    role: str = typer.Option(..., help="admin | lender | farm | device"),
    org: str | None = typer.Option(None, help="organisation id or name (a new name creates the organisation)"),
    farm: str | None = typer.Option(None, help="farm id (farm role)"),
    device: str | None = typer.Option(None, help="device id (device role)"),
    label: str = typer.Option("", help="free text shown in key listings"),
    database_url: str | None = typer.Option(None, "--database-url", help=_DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="one JSON object on stdout"),
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    import json

    from sqlalchemy import select

    from api.db.engine import make_engine, make_sessionmaker
    from api.db.models import Organization
    from api.errors import ProblemError
    from api.repositories.common import new_id, utcnow
    from api.services.auth import ROLES, new_key
    from flockid.console import fail

    if role not in ROLES:
        fail(f"--role {role!r} is not one of {', '.join(ROLES)}")
    settings = _settings(database_url)
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            org_id = None
            if org:
                row = session.get(Organization, org) or session.scalar(
                    select(Organization).where(Organization.name == org))
                if row is None:
                    row = Organization(id=new_id("org"), name=org, created_at=utcnow())
                    session.add(row)
                    session.flush()
                org_id = row.id
            try:
                key_row, key = new_key(session, role=role, pepper=settings.secret(), org_id=org_id, farm_id=farm,
                                       device_id=device, label=label)
            except ProblemError as exc:
                fail(f"create-key: {exc.detail}")
                return
            session.commit()
            out = {"api_key": key, "key_id": key_row.id, "role": role, "org_id": key_row.org_id,
                   "farm_id": key_row.farm_id, "device_id": key_row.device_id}
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(out))
    else:
        for k, v in out.items():
            typer.echo(f"{k}: {v}")


def register_bench(bench_app: typer.Typer) -> None:
    """Add `flockid bench api`."""

    @bench_app.command("api")
    def bench_api_command(
        farms: int = typer.Option(1000, min=1, help="farms to generate"),
        days: int = typer.Option(90, min=1, help="days of hourly reports per farm"),
        birds: int = typer.Option(20, min=1, max=500, help="birds per report"),
        ingest_reports: int = typer.Option(2000, min=10, help="signed reports sent through POST /v1/reports"),
        queries: int = typer.Option(200, min=10, help="valuation and time-series queries to time"),
        database_url: str | None = typer.Option(None, "--database-url",
                                                help="default: a fresh SQLite file in a temp dir"),
        keep: bool = typer.Option(False, help="keep the generated database (SQLite file or PostgreSQL db)"),
        seed: int = typer.Option(0),
        as_json: bool = typer.Option(False, "--json", help="one JSON object on stdout"),
    ) -> None:
        """Fill a database (farms x days x 24 reports), then time ingest and queries."""
        from api.bench import run_bench
        from flockid.console import emit

        result = run_bench(farms=farms, days=days, birds=birds, ingest_reports=ingest_reports, queries=queries,
                           database_url=database_url, keep=keep, seed=seed)
        emit(result, as_json=as_json, title="bench api", measured=True)
