"""Database tables, engine/session set-up, migrations and *_for_actor queries."""
