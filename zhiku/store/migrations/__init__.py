"""Numbered Alembic migrations of the app store (0001, 0002, ...), applied at start-up."""
