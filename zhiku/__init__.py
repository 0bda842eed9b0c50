"""zhiku (知库): a private knowledge base with cited answers."""

__version__ = "0.1.0"
