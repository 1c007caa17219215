"""Persistence: tables, the engine and session factory, migrations and named queries."""
