"""The ``tokenwage`` command line: one module per command group."""
