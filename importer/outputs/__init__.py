"""Stage 5, the outputs: what a person or a program reads after a command.

:mod:`~importer.outputs.results` builds the results lines from the records, the row issues and
the journal and writes the Excel-safe CSV (:mod:`~importer.outputs.xlsx` the workbook form),
every file replaced whole (:mod:`~importer.outputs.files`); :mod:`~importer.outputs.summary` is
the typed summary and the one place an outcome becomes an exit code;
:mod:`~importer.outputs.report` writes the report page, :mod:`~importer.outputs.cards` the
print-ready cards (PDF, or a zip of QR images), :mod:`~importer.outputs.notify` the
webhook notification, :mod:`~importer.outputs.progress` the progress bar or cron's log lines.
Outputs read records, outcomes and the journal's entries; they never send a request. A new
thing to hand a person afterwards (a file, a page) is a module here.
"""
