"""Errors raised by the solver core (the ``territory`` face translates them)."""


class SolverInputError(ValueError):
    """A problem object is malformed (shapes, signs, indices); the message says which field."""


class SolverFailure(RuntimeError):
    """An underlying solver failed unexpectedly."""
