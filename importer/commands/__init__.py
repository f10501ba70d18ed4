"""The commands: one module per command, each wiring the stages for one job.

:mod:`~importer.commands.run` (``run`` and ``validate``: sheet -> rules -> journal -> api ->
outputs), :mod:`~importer.commands.undo`, :mod:`~importer.commands.audit`,
:mod:`~importer.commands.revoke`, :mod:`~importer.commands.status` and
:mod:`~importer.commands.cards` (sheet and journal -> printed cards, nothing sent);
:mod:`~importer.commands.context` is the run context every command that talks to the API opens
(journal lock, signals, session, progress, summary, exit code). A command never imports another
command: what two of them share belongs to a stage (the sheet checked in
:mod:`importer.rules.checked`, live state in :mod:`importer.api.live`) or to the context. A new
command is a module here and one row of the table in :mod:`importer.cli`.
"""
