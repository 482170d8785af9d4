"""Root exceptions for Footfall. Edges (CLI, HTTP, ingest) turn these into friendly messages."""


class FootfallError(Exception):
    """Base class for every error Footfall raises on purpose."""


class ValidationError(FootfallError):
    """A message or value does not follow the wire contract; `field` names the culprit."""

    def __init__(self, reason: str, field: str | None = None):
        self.reason = reason
        self.field = field
        super().__init__(f"{field}: {reason}" if field else reason)


class ConfigError(FootfallError):
    """A configuration file is missing, unreadable or wrong; names the file and the key."""

    def __init__(self, path: str, key: str | None, problem: str):
        self.path = path
        self.key = key
        self.problem = problem
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {problem}")


class StoreError(FootfallError):
    """The store file is missing, empty, damaged or unwritable; the message names the file."""
