"""Engines behind small Protocols. Only ``scribe.engines.build`` names the real
adapters, and imports them lazily."""
