"""tokenwage: pay engineers in AI tokens and keep the books honest."""

__version__ = "0.1.0"
