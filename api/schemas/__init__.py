"""Request/response models: Create/Update bodies (extra=forbid, bounded) and Public views."""
