"""``python -m importer``: the same as the ``zype-import`` console script."""

from importer.cli import main

raise SystemExit(main())
