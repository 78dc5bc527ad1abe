"""loss.png's trend line: a trailing mean that starts from the first value."""

from specforge_trainer.reporting.metrics_file import moving_average


def test_trailing_mean_over_a_window():
    assert moving_average([1.0, 2.0, 3.0, 4.0], 2) == [1.0, 1.5, 2.5, 3.5]
    assert moving_average([5.0, 1.0], 1) == [5.0, 1.0]
    assert moving_average([], 3) == []
