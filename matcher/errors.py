"""Domain errors: messages a person can act on, naming the field that is wrong."""


class DomainError(Exception):
    """A rule of the domain refused the request; nothing was changed."""

    status = 400

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationError(DomainError):
    """One or more input fields are invalid. `errors` maps field name to message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        field, message = next(iter(self.errors.items()))
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()), field)


class AccessDenied(DomainError):
    """The acting user may not see or change this object."""

    status = 403


class NotFound(DomainError):
    """No such object (or not one the user may know about)."""

    status = 404


class Conflict(DomainError):
    """The object changed since it was loaded (stale edit) or the action clashes with another."""

    status = 409
