"""The engine's errors: every one a ValueError that says where in the template it happened."""

from __future__ import annotations


class TemplateError(ValueError):
    """Any problem with a template."""


class TemplateSyntaxError(TemplateError):
    """The source is not a valid template (or breaks a compile limit); ``line`` and ``column`` are 1-based."""

    def __init__(self, reason: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {reason}")
        self.reason = reason
        self.line = line
        self.column = column


class TemplateRenderError(TemplateError):
    """Rendering failed: a missing helper or partial, a limit, a helper's own error.

    ``line`` and ``column`` (1-based) are those of the innermost tag that was
    rendering, set as the error passes through it; None only for errors raised
    outside any tag.
    """

    def __init__(self, reason: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.column = column

    def at(self, line: int, column: int) -> TemplateRenderError:
        """Record where it happened, once: the innermost tag wins."""
        if self.line is None:
            self.line = line
            self.column = column
            self.args = (f"line {line}, column {column}: {self.reason}",)
        return self

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else self.reason
