"""Data access: queries over the SQLAlchemy models, no HTTP and no business rules."""
