#!/usr/bin/env bash
# Independent fuzzing run: the schemathesis CLI (coverage, fuzzing and stateful phases) against a live
# uvicorn server, admin key attached, checking for server errors. Not part of pytest (it takes minutes).
#   tests/api/schemathesis_live.sh                     # SQLite in a temp dir, 20 examples per operation
#   N=40 DBURL=postgresql+psycopg://postgres@127.0.0.1:5432/<empty db> tests/api/schemathesis_live.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
TMP=$(mktemp -d)
URL=${DBURL:-sqlite:///$TMP/st.db}
PORT=${PORT:-18799}
KEY=$(.venv/bin/python - "$URL" <<'PY'
import sys
from api.db import migrate
from api.db.engine import make_engine, make_sessionmaker
from api.services.auth import new_key
from api.settings import Settings
url = sys.argv[1]
migrate.upgrade(url)
engine = make_engine(url)
with make_sessionmaker(engine)() as s:
    _, key = new_key(s, role="admin", pepper=Settings(database_url=url).secret(), label="schemathesis")
    s.commit()
engine.dispose()
print(key)
PY
)
FLOCKID_DATABASE_URL=$URL FLOCKID_INGEST_RATE_PER_S=100000 FLOCKID_INGEST_BURST=100000 \
  .venv/bin/uvicorn --factory api.app:create_app --port "$PORT" --log-level warning &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
.venv/bin/schemathesis run "http://127.0.0.1:$PORT/openapi.json" -H "Authorization: Bearer $KEY" \
  -c not_a_server_error -n "${N:-20}" --seed "${SEED:-1}" --workers 2
