"""Benchmarks for zype-import (issue 7): ``python -m bench`` or ``make bench``.

Each benchmark starts its own sandbox as a separate process on a free loopback port, writes its
own data to a temporary folder, and adds rows to one table with the goal beside each figure.
Ratios taken in the same run are what count on a shared, noisy machine; absolute figures move.
"""
