"""Encryption at rest, in three parts (FORMAT.md is the specification):

- ``envelope``: the sealed value and file formats, pure functions over bytes;
- ``vault``: the master key and the per-client data keys it wraps (crypto-shredding);
- ``columns``: sealed columns in the ORM, installed on an engine by ``install``.

Nothing here registers anything at import."""
