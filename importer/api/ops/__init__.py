"""One pure protocol per operation, each run by :class:`importer.api.engine.Runner`.

=============  =====================================  ==========================================
operation      item                                   result
=============  =====================================  ==========================================
``CREATE``     a :class:`~importer.models.Record`     created | rejected | failed | pending ...
``UPDATE``     a :class:`Held` code, new values       updated | missing | rejected | failed ...
``DELETE``     a :class:`Held` code                   deleted | rejected | failed | pending ...
``PROBE``      nothing                                True, or the run stops (not the API)
``LIST_PAGE``  filters and a page number              the page's codes and the next page
``GET_ONE``    an API id                              the code, or None when Zype has none
``FIND_CODE``  a code string                          the code, or None when Zype has none
=============  =====================================  ==========================================

An operation only builds requests (:mod:`importer.api.wire`) and reads answers; waiting, pacing,
retrying and counting are the engine's. Adding an operation means a module here, its tests,
and a row in the CLI's table of commands.
"""

from importer.api.ops.create import CREATE, Create, settle
from importer.api.ops.read import FIND_CODE, GET_ONE, LIST_PAGE, PROBE, Page, Probe
from importer.api.ops.rows import Held, RowOutcomes
from importer.api.ops.write import DELETE, UPDATE, Delete, Update

__all__ = [
    "CREATE",
    "DELETE",
    "FIND_CODE",
    "GET_ONE",
    "LIST_PAGE",
    "PROBE",
    "UPDATE",
    "Create",
    "Delete",
    "Held",
    "Page",
    "Probe",
    "RowOutcomes",
    "Update",
    "settle",
]
