"""Renderers that turn pure core results into text, JSON-safe dicts and HTML.

Nothing here reads the database or the environment; templates ship in ``templates/``.
"""

from tokenwage.render.statement import statement_html, statement_json, statement_text

__all__ = ["statement_html", "statement_json", "statement_text"]
