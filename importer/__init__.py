"""zype-import: bulk-create Zype redemption codes from a marketing spreadsheet."""

__version__ = "0.1.0"
