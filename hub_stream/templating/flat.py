"""Flat programs: the common row template, rendered without Scope, State or frames.

Row templates are nearly always text, path mustaches and {{json path}}. Such a
template renders here by lookups and one join: the root's keys come from one
itemgetter call per kind of slot, the other values from small closures, one
search tells whether any value needs escaping at all, and another itemgetter
interleaves texts and literals. It prints exactly as the general program (the
same printing functions); whatever it does not cover (a root that is no dict,
helpers that shadow a name it uses, partials, a value that fails to print,
output over the cap) is rendered by the general program instead, which also
reports the error with its line and column. Nothing here is reached by
template text other than as dict keys, list indexes and @-data names, as there.

Bounds: at most MAX_SLOTS mustaches, so the values it holds at once are at
most MAX_SLOTS times the largest value (an event is under 1 MB); joined values
over the output cap go to the general program before anything is escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from operator import itemgetter
from typing import Any

from hub_stream.templating.parser import Expr, Literal, Mustache, Node, PathExpr, Text
from hub_stream.templating.runtime import helper_name_of
from hub_stream.templating.values import UNDEFINED, get_key, js_string, json_literal, print_escaped

MAX_SLOTS = 40


class Fallback(Exception):
    """This render is for the general program (which also reports any error)."""


Data = Mapping[str, Any] | None
Escape = Callable[[str], str]
FlatLookup = Callable[[dict[str, Any], Data], Any]


def _flat_lookup(expr: Expr) -> FlatLookup | None:
    """A lookup from the root (a dict) and the ``@`` data, as _resolver does at the top level."""
    if isinstance(expr, Literal):
        constant = expr.value
        return lambda root, data: constant
    if not isinstance(expr, PathExpr):
        return None
    parts = expr.parts
    if expr.depth:  # ../ and @../ at the top: left to the general program
        return None
    if expr.data:  # the top frame holds {"root": root, **data}
        head, rest = (parts[0], parts[1:]) if parts else ("", ())

        def data_var(data: Data, root: dict[str, Any]) -> Any:
            if data is not None and head in data:
                return data[head]
            return root if head == "root" else UNDEFINED

        if len(rest) == 1:  # @event.Field: the usual
            key = rest[0]

            def data_field(root: dict[str, Any], data: Data) -> Any:
                value = data[head] if data is not None and head in data else data_var(data, root)
                return value.get(key, UNDEFINED) if type(value) is dict else get_key(value, key)

            return data_field

        def data_lookup(root: dict[str, Any], data: Data) -> Any:
            value = data_var(data, root)
            for part in rest:
                value = get_key(value, part)
            return value

        return data_lookup
    if not parts:  # this and .
        return lambda root, data: root
    first, rest = parts[0], parts[1:]
    if len(rest) == 1:  # a.b: the usual nested field, without the loop
        second = rest[0]

        def pair_lookup(root: dict[str, Any], data: Data) -> Any:
            value = root.get(first, UNDEFINED)
            return value.get(second, UNDEFINED) if type(value) is dict else get_key(value, second)

        return pair_lookup

    def path_lookup(root: dict[str, Any], data: Data) -> Any:
        value = root.get(first, UNDEFINED)
        for part in rest:
            value = get_key(value, part)
        return value

    return path_lookup


class _Slot:
    """One mustache of a flat program: what it prints (kind) and where its value comes from."""

    __slots__ = ("key", "kind", "lookup", "uses")

    def __init__(self, kind: str, key: str | None, lookup: FlatLookup | None, uses: str | None) -> None:
        self.kind = kind  # escaped ({{x}}), raw ({{{x}}}) or json ({{json x}})
        self.key = key  # a key of the root, fetched with the others in one call...
        self.lookup = lookup  # ...or a lookup of its own (a.b, @event.X, this)
        self.uses = uses  # a name that must not be a registered helper


def _top_key(expr: Expr) -> str | None:
    """``name``: a key of the root, as resolve_one reads it at the top level (no block params there)."""
    if isinstance(expr, PathExpr) and not expr.data and not expr.this and expr.depth == 0 and len(expr.parts) == 1:
        return expr.parts[0]
    return None


def _flat_slot(node: Mustache, builtins: Collection[str]) -> _Slot | None:
    """How a mustache prints in a flat program; None when it needs the general program."""
    call = node.call
    kind = "escaped" if node.escaped else "raw"
    if not call.params and not call.hash:
        name = helper_name_of(call.path)
        if name is not None and name in builtins:
            return None
        if name is not None and "." not in name:  # {{name}} calls a helper when one is registered under that name
            return _Slot(kind, name, None, name)
        lookup = _flat_lookup(call.path) if not isinstance(call.path, Literal) else None
        return _Slot(kind, None, lookup, name) if lookup is not None else None
    if helper_name_of(call.path) == "json" and len(call.params) == 1 and not call.hash:
        # The helper returns a SafeString: {{json x}} and {{{json x}}} print the same.
        param = call.params[0]
        key = _top_key(param)
        if key is not None:
            return _Slot("json", key, None, "json")
        lookup = _flat_lookup(param)
        return _Slot("json", None, lookup, "json") if lookup is not None else None
    return None


FlatValues = Callable[[dict[str, Any], Data], Sequence[Any]]


def _values_of(slots: list[_Slot]) -> FlatValues | None:
    """The values of ``slots`` in order: keys first, in one C call (itemgetter), then lookups."""
    keys = [s.key for s in slots if s.key is not None]
    lookups = [s.lookup for s in slots if s.lookup is not None]
    if not slots:
        return None
    def grab_each(root: dict[str, Any]) -> Sequence[Any]:  # itemgetter(k) gives no tuple
        return tuple(root[key] for key in keys)

    grab: Callable[[dict[str, Any]], Sequence[Any]] = itemgetter(*keys) if len(keys) >= 2 else grab_each

    def keyed(root: dict[str, Any], data: Data = None) -> Sequence[Any]:
        # A missing key reads as None here, UNDEFINED there: both print the same.
        try:
            return grab(root)
        except KeyError:
            return tuple(map(root.get, keys))

    # Rows have few lookups besides keys: one or two are called without a loop.
    if not lookups:
        return keyed
    if len(lookups) == 1:
        (first,) = lookups
        return lambda root, data: (*keyed(root), first(root, data))
    if len(lookups) == 2:
        first, second = lookups
        return lambda root, data: (*keyed(root), first(root, data), second(root, data))
    return lambda root, data: (*keyed(root), *[lookup(root, data) for lookup in lookups])


class FlatProgram:
    """Literals and slots, rendered as ``literal0 text0 literal1 text1 … literalN``.

    The slots' texts are computed by kind (escaped, raw, json), each kind in as
    few calls as possible, and put between the literals by a slice assignment:
    C calls instead of a Python loop over the slots. ``render`` is a closure.
    """

    __slots__ = ("keyed", "render", "slots", "uses")

    def __init__(self, literals: list[str], slots: list[_Slot]) -> None:
        self.slots = len(slots)
        self.keyed = sum(1 for s in slots if s.key is not None)  # read by itemgetter; the others by a closure each
        self.uses = frozenset(s.uses for s in slots if s.uses is not None)
        self.render = _flat_renderer(literals, slots)


FlatRender = Callable[[dict[str, Any], Data, Escape, Callable[[str], Any], int], str]


def _flat_renderer(literals: list[str], slots: list[_Slot]) -> FlatRender:
    """``literals`` has one entry before each slot and one after the last."""
    by_kind = {
        kind: [s for s in slots if s.kind == kind and s.key is not None] + [s for s in slots if s.kind == kind and s.key is None]
        for kind in ("escaped", "raw", "json")
    }
    escaped_values, raw_values, json_values = (_values_of(by_kind[kind]) for kind in ("escaped", "raw", "json"))
    # The texts come by kind; `in_order` puts them in template order (None when
    # they already are, as in a row whose {{json}} fields come last), and they
    # go into the odd places of a copy of `skeleton`, between the literals.
    computed = [*by_kind["escaped"], *by_kind["raw"], *by_kind["json"]]
    index = {id(slot): i for i, slot in enumerate(computed)}
    order = [index[id(slot)] for slot in slots]
    in_order: Callable[[list[Any]], Sequence[Any]] | None = itemgetter(*order) if order != sorted(order) else None
    skeleton: list[Any] = [None] * (2 * len(slots) + 1)
    skeleton[::2] = literals

    def render(root: dict[str, Any], data: Data, escape: Escape, needs_escape: Callable[[str], Any], max_output: int) -> str:
        escaped: Sequence[Any] = ()
        if escaped_values is not None:
            escaped = escaped_values(root, data)
            try:
                joined = "".join(escaped)  # one pass over all the values
                clean = len(joined) <= max_output and not needs_escape(joined)
            except TypeError:  # a value that is no string
                clean = False
            if not clean:
                escaped = _printed(escaped, escape, max_output)
        raw: Sequence[Any] = ()
        if raw_values is not None:
            raw = raw_values(root, data)
            try:
                if len("".join(raw)) > max_output:
                    raise Fallback
            except TypeError:
                raw = _printed(raw, None, max_output)
        as_json: Sequence[str] = ()
        if json_values is not None:
            try:
                as_json = list(map(json_literal, json_values(root, data)))
            except Exception:  # noqa: BLE001 - the general program reports it as helper 'json' failing
                raise Fallback from None
        texts = [*escaped, *raw, *as_json]
        parts = skeleton.copy()
        parts[1::2] = texts if in_order is None else in_order(texts)
        return "".join(parts)

    return render


def _printed(values: Sequence[Any], escape: Escape | None, max_output: int) -> list[str]:
    """The values printed (escaped unless ``escape`` is None), or Fallback once they pass the cap."""
    out = []
    total = 0
    for value in values:
        text = print_escaped(value, escape) if escape is not None else js_string(value)
        total += len(text)
        if total > max_output:
            raise Fallback
        out.append(text)
    return out


def compile_flat(nodes: list[Node], builtins: Collection[str]) -> FlatProgram | None:
    """A flat program for a top level of only text and at most MAX_SLOTS simple mustaches, else None.

    ``builtins`` are the helper names always registered (a mustache naming one is no plain lookup).
    Its work is in proportion to the template and its values, under the output cap.
    """
    literals: list[str] = []
    slots: list[_Slot] = []
    pending = ""
    for node in nodes:
        if isinstance(node, Text):
            pending += node.value
            continue
        slot = _flat_slot(node, builtins) if isinstance(node, Mustache) else None
        if slot is None:
            return None
        literals.append(pending)
        slots.append(slot)
        pending = ""
    if not slots or len(slots) > MAX_SLOTS:
        return None
    literals.append(pending)
    return FlatProgram(literals, slots)

