"""probe: measure censorship and content moderation in language models."""

__version__ = "0.1.0"
