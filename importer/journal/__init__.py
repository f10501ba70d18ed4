"""The SQLite journal: every row's state before and after each request, so a rerun resumes.

A row is known by :attr:`importer.models.Record.key` (its code, or for a generated code its
content and occurrence), so edits elsewhere in the sheet do not move it. Its states, every change
going through :func:`transition`::

    (new), deleted, rejected ──generate──> pending       generated codes, before anything is sent
    (new), pending, failed, ──send──> sending ──record──> created | rejected | failed
    rejected, deleted                                      | pending | sending
    created ──delete──> deleting ──record──> deleted | created (kept, refused, never sent)
                                             | deleting (may have been applied)
    created ──record an update──> created (with the new values)
    (new), found ──revoke──> deleting ──record──> deleted | found (kept, refused, never sent)
                                                  | deleting (may have been applied)

A ``revoke`` journal (its own file) holds the listed codes it marked for deletion: the id it
looked up is stored with the ``deleting`` mark, in one commit before the DELETE goes out, so a
rerun after a crash knows that a code Zype no longer holds was deleted by this tool.

``sending`` is committed for a whole batch, in one commit, before any of it goes out, so after a
crash (even ``kill -9``) only the rows still ``sending`` may have reached the API: the next run
looks them up before it sends anything (:func:`plan`). Outcomes are buffered and committed in
groups; an outcome lost in a crash leaves its row ``sending``, which is looked up again.

``deleting`` works like ``sending``: marked in one commit before a DELETE leaves, so after a
crash the next ``undo`` reads the code's state again and deletes it if Zype still holds it. A
``PUT`` needs no mark: sending the same values twice does no harm, and the journal keeps the old
values until the API confirms the new ones.

Every :mod:`sqlite3` error is translated here, at one boundary, into
:class:`~importer.errors.JournalError` naming the journal and the cause; a file that is not a
journal is never written to, overwritten or deleted (it may be the record of what was created).

Durability: WAL with ``synchronous=FULL`` by default. Two commits must survive before a request
leaves: the generated code (else, after a power loss, the rerun makes a second code for the same
row and both end up created) and the ``sending`` mark (else the rerun believes the code was
never sent, posts it again and misreads the answer "already taken"). WAL with ``NORMAL`` keeps
every transaction through an application crash but may lose the newest commits on power loss;
``FULL`` fsyncs the WAL at every commit. Commits are per group (``journal.batch_size`` rows, or
``journal.flush_interval`` seconds of outcomes), so FULL costs one fsync per few hundred rows,
nothing beside the network. ``NORMAL`` stays available for disks where that still matters.

One run at a time: an exclusive ``flock`` on ``<journal>.lock``, which the kernel releases when
the holder dies, so a lock file left by a killed run never blocks the next one. The file names
the holder (pid and start time) for the message the second run prints.
"""

from importer.journal.readers import (
    LISTED_STATES,
    UNFINISHED,
    RunRow,
    bound_target,
    created_codes,
    last_run,
    new_rows_since,
    read_entries,
    read_only,
    run_commands,
    state_counts,
)
from importer.journal.states import (
    LOOK_UP_FIRST,
    SEND,
    SKIP,
    TRANSITIONS,
    Entry,
    Plan,
    plan,
    transition,
)
from importer.journal.store import SCHEMA, Created, Journal, describe, lock_path, open_journal

__all__ = [
    "LISTED_STATES",
    "LOOK_UP_FIRST",
    "SCHEMA",
    "SEND",
    "SKIP",
    "TRANSITIONS",
    "UNFINISHED",
    "Created",
    "Entry",
    "Journal",
    "Plan",
    "RunRow",
    "bound_target",
    "created_codes",
    "describe",
    "last_run",
    "lock_path",
    "new_rows_since",
    "open_journal",
    "plan",
    "read_entries",
    "read_only",
    "run_commands",
    "state_counts",
    "transition",
]
