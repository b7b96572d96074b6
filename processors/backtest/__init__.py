"""A vectorised backtest engine: a whole parameter grid at once, in numpy.

The conventions (fills, costs, metrics) are written down in ``docs/backtesting.md``; ``simulation`` and ``metrics``
are the two modules that define them.
"""
