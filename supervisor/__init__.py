"""cointoss: move a Redis-backed worker fleet from OLD to NEW Redis by weighted coin toss."""

__all__ = ["__version__"]

__version__ = "0.1.0"
