"""Stage 2, the rules: rows of text cells -> valid records and row issues.

A row problem is a value (:class:`~importer.models.RowIssue`: row, stable code, column, a
message a marketer understands), never an exception, and nothing invalid goes further.
:mod:`~importer.rules.validate` runs every rule over whole columns at once,
:mod:`~importer.rules.dates` reads dates as people write them, :mod:`~importer.rules.damage`
recognises what Excel did to codes and dates, :mod:`~importer.rules.codes` makes the codes of
rows that have none, and :mod:`~importer.rules.checked` is the one call every command starts
with: the sheet loaded (:mod:`importer.sheet`) and checked. A new rule goes into ``validate``
with its issue code, its row in the docstring's table and the README's.
"""
