"""The folding benchmark folds every line it journals, in the batches it was asked for."""

from __future__ import annotations

from bench.fold import run


def test_all_at_once_folds_in_the_largest_batches() -> None:
    seconds, cpu, batches = run(300)
    assert batches == 2 and seconds > 0 and cpu > 0  # 256 + 44


def test_a_batch_size_journals_and_folds_that_many_at_a_time() -> None:
    _, _, batches = run(100, batch=7)
    assert batches == 15  # 14 passes of 7 and one of 2
