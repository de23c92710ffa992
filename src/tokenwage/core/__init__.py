"""The pure domain core: money, pricing, allowances, ledger, statements, analytics.

Nothing in this package imports web, database or CLI code (a test enforces it).
"""
