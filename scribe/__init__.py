"""scribe: an on-premises clinical-documentation assistant.

Importing the package is cheap: the heavy engines (torch, ctranslate2, spaCy)
are imported lazily by ``scribe.engines.build`` only when real models are used.
"""

__version__ = "0.1.0"
