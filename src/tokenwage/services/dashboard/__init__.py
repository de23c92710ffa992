"""What the dashboard pages show, one module per page, as frozen dataclasses.

Usage is read from ``usage_daily`` (kept equal to the usage records summed per org-local day
by every writer), balances from the account heads, money movements from the ledger by
account and recording time (indexed), and individual usage records only for a person's most
recent requests (``LIMIT``, indexed). No page query sums ``usage_records``, so pages stay
fast with millions of records. The computations themselves live in
:mod:`tokenwage.core.analytics`.
"""
