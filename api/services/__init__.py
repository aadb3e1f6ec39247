"""Business logic: ingest, valuation, alerts, tenancy/auth. Routers call these; these call repositories."""
