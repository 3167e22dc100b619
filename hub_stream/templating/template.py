"""Template: compile once (cached by content hash), render many times, within bounds."""

from __future__ import annotations

import gc
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from hub_stream.templating.codegen import NativeProgram, compile_native
from hub_stream.templating.compiler import compile_program
from hub_stream.templating.errors import TemplateError, TemplateRenderError, TemplateSyntaxError
from hub_stream.templating.flat import Fallback, FlatProgram, compile_flat
from hub_stream.templating.parser import parse
from hub_stream.templating.runtime import (
    BUILTIN_HELPERS,
    DEFAULT_MAX_OUTPUT,
    DEFAULT_TIME_LIMIT_S,
    CompiledProgram,
    DataFrame,
    Scope,
    State,
)
from hub_stream.templating.values import ESCAPES, NEEDS_HTML_ESCAPE, needs_json_escape

CACHE_SIZE = 1024
NATIVE_OVER_FLAT = 8  # mustaches up to which a flat-shaped template renders natively
Escape = Callable[[str], str]

NEEDS_ESCAPE: dict[str, Callable[[str], Any]] = {"html": NEEDS_HTML_ESCAPE, "json": needs_json_escape}
_MODES = {name: (ESCAPES[name], NEEDS_ESCAPE[name]) for name in ESCAPES}


class Template:
    """A compiled template: render it as often as you like.

    ``render(context, *, data=None, helpers=None, partials=None, escape="html",
    max_output=DEFAULT_MAX_OUTPUT, time_limit=DEFAULT_TIME_LIMIT_S) -> str``
    renders with ``context`` as the root; ``data`` adds ``@`` variables. It
    raises TemplateRenderError (with the line and column of the tag) for a
    missing helper or partial, a helper's failure, output over
    ``max_output`` characters (stopped as it grows) or a render over
    ``time_limit`` seconds.

    For a template with a native program, ``render`` is that program's own
    function (codegen.ENTRY: no call in between), which hands what it does
    not cover to ``_render`` (the flat program, then the closures); with a
    flat program only, a function that calls it directly (_flat_entry);
    otherwise the method ``_render``.
    """

    __slots__ = ("_flat", "_native", "_program", "render", "source")
    render: Callable[..., str]

    def __init__(
        self, source: str, program: CompiledProgram, flat: FlatProgram | None = None, native: NativeProgram | None = None
    ) -> None:
        self.source = source
        self._program = program  # closures: the whole language
        self._flat = flat  # the same template for the common case, when it has that shape
        self._native = native  # the same template as one function, when it uses only what that covers
        if native is not None:
            self.render = native.entry(self._render)
        elif flat is not None:
            self.render = _flat_entry(self, flat)
        else:
            self.render = self._render

    def _render(
        self,
        context: Any,
        *,
        data: Mapping[str, Any] | None = None,
        helpers: Mapping[str, Callable[..., Any]] | None = None,
        partials: Mapping[str, str | Template] | None = None,
        escape: str = "html",
        max_output: int = DEFAULT_MAX_OUTPUT,
        time_limit: float = DEFAULT_TIME_LIMIT_S,
    ) -> str:
        """``render`` by the flat program or the closures (see the class)."""
        mode = _MODES.get(escape)
        if mode is None:
            raise ValueError(f"escape must be one of {sorted(ESCAPES)}, not {escape!r}")
        flat = self._flat
        if (
            flat is not None
            and type(context) is dict
            and not partials  # the general program compiles (and so checks) the partials given
            and (data is None or type(data) is dict)
            and (not helpers or helpers.keys().isdisjoint(flat.uses))
        ):
            try:
                text = flat.render(context, data, mode[0], mode[1], max_output)
            except (Fallback, RecursionError):
                pass  # the general program renders it, or raises its error
            else:
                if len(text) <= max_output:
                    return text
        return self._render_general(context, data, helpers, partials, mode[0], max_output, time_limit)

    def renderer(self, root_key: str, data_name: str, escape: str = "json") -> Callable[[Mapping[str, Any]], str]:
        """A render function of one argument, an envelope: it renders ``envelope.get(root_key)``
        as the root with ``@data_name`` the envelope, with ``escape`` and the default limits, as
        ``render(envelope.get(root_key), data={data_name: envelope}, escape=escape)`` does.

        With a native program (of a template up to codegen.MAX_ENVELOPE_SOURCE), that program's
        own function of the envelope: no keyword arguments, no checks, and no data dict unless the
        template reads @ names (the row path renders so: payload.RouteEntry.render).
        """
        if escape not in ESCAPES:
            raise ValueError(f"escape must be one of {sorted(ESCAPES)}, not {escape!r}")
        general = self._render

        def rest(envelope: Mapping[str, Any]) -> str:
            return general(envelope.get(root_key), data={data_name: envelope}, escape=escape)

        native = self._native
        if native is not None and data_name != "root":  # the envelope function's @root is the root, never its data
            bound = native.envelope(root_key, data_name, ESCAPES[escape], rest)
            if bound is not None:
                return bound
        render = self.render
        return lambda envelope: render(envelope.get(root_key), data={data_name: envelope}, escape=escape)

    def _render_general(
        self,
        context: Any,
        data: Mapping[str, Any] | None,
        helpers: Mapping[str, Callable[..., Any]] | None,
        partials: Mapping[str, str | Template] | None,
        escape: Escape,
        max_output: int,
        time_limit: float,
    ) -> str:
        all_helpers = {**BUILTIN_HELPERS, **helpers} if helpers else BUILTIN_HELPERS
        compiled_partials: dict[str, Any] = {}
        for name, partial in (partials or {}).items():
            compiled_partials[name] = (partial if isinstance(partial, Template) else compile_template(partial))._program
        # as handlebars.js's initData: @../name at the top reads the data as given
        frame = DataFrame({"root": context, **data}, DataFrame(dict(data), None)) if data else DataFrame({"root": context}, None)
        scope = Scope(context, None, frame, {}, compiled_partials, 0)
        state = State(all_helpers, escape, max_output, time.monotonic() + time_limit)
        try:
            text = self._program(scope, state)
        except RecursionError:
            raise TemplateRenderError("template nesting too deep") from None
        if len(text) > max_output:  # counted as it grew; this only guards the count
            raise TemplateRenderError(f"output larger than {max_output} characters")
        return text


def _flat_entry(template: Template, flat: FlatProgram) -> Callable[..., str]:
    """``render`` of a template whose fast program is the flat one: Template._render, with no
    method or attribute between the call and the flat program."""
    flat_render, uses = flat.render, flat.uses

    def render(
        context: Any,
        *,
        data: Mapping[str, Any] | None = None,
        helpers: Mapping[str, Callable[..., Any]] | None = None,
        partials: Mapping[str, str | Template] | None = None,
        escape: str = "html",
        max_output: int = DEFAULT_MAX_OUTPUT,
        time_limit: float = DEFAULT_TIME_LIMIT_S,
    ) -> str:
        mode = _MODES.get(escape)
        if mode is None:
            raise ValueError(f"escape must be one of {sorted(ESCAPES)}, not {escape!r}")
        if (
            type(context) is dict
            and not partials  # the general program compiles (and so checks) the partials given
            and (data is None or type(data) is dict)
            and (not helpers or helpers.keys().isdisjoint(uses))
        ):
            try:
                text = flat_render(context, data, mode[0], mode[1], max_output)
            except (Fallback, RecursionError):
                pass  # the general program renders it, or raises its error
            else:
                if len(text) <= max_output:
                    return text
        return template._render_general(context, data, helpers, partials, mode[0], max_output, time_limit)

    return render


_CACHE: OrderedDict[str, Template] = OrderedDict()


def compile_template(source: str) -> Template:
    """Parse and compile ``source`` (cached by its hash); raises TemplateSyntaxError."""
    if not isinstance(source, str):
        raise TemplateError("a template must be a string")
    key = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
    cached = _CACHE.get(key)
    if cached is not None:
        _CACHE.move_to_end(key)
        return cached
    # Compiling makes many small objects and frees none: the cycle collector
    # would walk them all again and again (quadratic in the template's size).
    collecting = gc.isenabled()
    gc.disable()
    try:
        nodes = parse(source)
        flat = compile_flat(nodes, BUILTIN_HELPERS.keys())
        # A flat program reads many root keys in few C calls; with a few values, or mostly
        # dotted and @ paths (a closure each there), one function is faster.
        native_first = flat is None or flat.slots <= NATIVE_OVER_FLAT or 2 * flat.keyed <= flat.slots
        native = compile_native(nodes, len(source)) if native_first else None
        template = Template(source, compile_program(nodes), flat, native)
    except RecursionError:  # the parser's limits keep this from happening; never let it out bare
        raise TemplateSyntaxError("template nested too deeply to compile", 1, 1) from None
    finally:
        if collecting:
            gc.enable()
    _CACHE[key] = template
    if len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return template
