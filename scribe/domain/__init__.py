"""Pure rules and values. Imports nothing else from scribe; never reads the clock,
the environment or the disk (callers pass ``now``)."""
