"""Stage 3, the API: records -> requests -> outcomes, under a strict rate limit, exactly once.

:mod:`~importer.api.wire` is Zype's wire format (paths, bodies, what an answer means),
:mod:`~importer.api.http` the one boundary with aiohttp (its errors translated, the key
removed), :mod:`~importer.api.limiter` the pacing primitive, :mod:`~importer.api.engine` the
one runner of every operation (pacing, retries, stopping, counting) and
:mod:`~importer.api.pool` its workers; :mod:`~importer.api.pacing` is ``--rate auto``'s policy
(with :mod:`~importer.api.rate_headers`, the limits answers state, and
:mod:`~importer.api.remembered`, the paces found per API); :mod:`~importer.api.ops` holds one
pure protocol per operation (create, update, delete, the reads), and :mod:`~importer.api.live`
reads what Zype holds now with list calls. A new kind of request is a protocol in ``ops/`` and
a row of its table; nothing here knows about sheets, files or commands.
"""
