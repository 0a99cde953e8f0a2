"""The study: a grid of datasets x models x methods x seeds (grid.py), run cell by cell (runner.py) into a
results store (store.py)."""
