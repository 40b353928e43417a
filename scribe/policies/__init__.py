"""Policies are data (YAML in ``policies/``), validated strictly at start-up."""

from scribe.policies.loader import Policies, load_policies

__all__ = ["Policies", "load_policies"]
