"""File names inside a data dir that more than one package reads (kept free of imports: the CLI's
``--help`` reads this)."""

PROFILE_FILE = "business.env"
"""The data dir's own settings (``supportlah init`` and ``demo`` write it): who the business is. It is
read after the data dir is known and is the weakest source: ``.env`` and the environment override it."""
