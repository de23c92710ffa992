"""Use cases: each function does one job inside the caller's transaction.

The CLI, web pages and gateway call these; they combine the pure core with the storage
repositories and never open transactions of their own.
"""
