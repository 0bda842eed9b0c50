"""zhiku's error hierarchy; only the UI and the CLI turn these into messages."""


class ZhikuError(Exception):
    """Base of every error zhiku raises on purpose; the message says how to fix it."""


class FileRejected(ZhikuError):
    """A file cannot be indexed (unsupported, empty, encrypted, too large, unreadable)."""


class UnsupportedFile(FileRejected):
    """The file type is not one zhiku reads."""


class OllamaUnavailable(ZhikuError):
    """Ollama is down, unreachable, slow or lacks the model."""


class IndexUnavailable(ZhikuError):
    """The index cannot be opened or reached."""


class NotFound(ZhikuError):
    """A document or collection does not exist."""


class AccessDenied(ZhikuError):
    """The acting user may not read or change this collection."""


class LoginFailed(ZhikuError):
    """A sign-in was refused: wrong name or password, or a disabled account."""


class LoginThrottled(LoginFailed):
    """Too many failed sign-ins for this name or address: wait before trying again."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class StoreUnavailable(ZhikuError):
    """The app database cannot be opened, read or migrated."""


class DiskFull(ZhikuError):
    """The data dir has no room left for what was asked."""


class GlossaryError(ZhikuError):
    """The company glossary (ZHIKU_GLOSSARY) is missing or malformed."""
