"""Stage 1, the sheet: a file as marketing wrote it -> text cells -> rows under canonical columns.

Everything that opens an input file lives here and nowhere else, and pandas does not leave it
(except the frame the validator reads, :class:`~importer.sheet.load.Sheet`).
:mod:`~importer.sheet.csvs` reads CSV text (encodings, delimiters, notes above the header),
:mod:`~importer.sheet.sniff` tells a file's kind from its content, :mod:`~importer.sheet.guard`
(with :mod:`~importer.sheet.zipparts` and :mod:`~importer.sheet.xlsb`) checks a workbook before
it is read, :mod:`~importer.sheet.workbooks` reads .xlsx, .xlsm, .xlsb, .xls and .ods with
python-calamine (which sheet, cells as they show), :mod:`~importer.sheet.errorcells` and
:mod:`~importer.sheet.xls` find the formula errors calamine hides,
:mod:`~importer.sheet.pasted` cleans text pasted from mail and web pages (invisible characters,
Zype addresses), and :mod:`~importer.sheet.load` finds the header, maps the columns and hands
the rows on, every cell a ``str``. A new file format goes here: a reader beside ``csvs`` and
``workbooks``, chosen in ``load``; the stages after it never know which format a row came from.
"""
