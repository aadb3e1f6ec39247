"""FlockID lender API: FastAPI app factory (`api.app.create_app`), SQLAlchemy models and Alembic
migrations, services, routers and the `flockid api` CLI. Shares only `vision.wire` with the edge."""
