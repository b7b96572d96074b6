"""A vectorised backtest engine: a whole parameter grid at once, in numpy.

The conventions (fills, costs, metrics) are written down in ``docs/backtesting.md``. ``simulation`` and ``metrics``
state them in vectorised numpy; ``kernel`` is the compiled single pass the engine runs, tested against them.
"""
