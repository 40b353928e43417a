"""Use cases. Services depend on engine Protocols and db tables, never on adapters."""
