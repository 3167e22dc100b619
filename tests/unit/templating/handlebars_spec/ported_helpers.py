"""Python ports of the JavaScript helpers in handlebars.js's spec, keyed by their source.

``this`` of a JavaScript helper is ``options.context`` here; ``options.fn(ctx)``
and ``options.inverse(ctx)`` are the same; ``options.data`` is the ``@`` data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from hub_stream.templating import UNDEFINED, SafeString
from hub_stream.templating.values import escape_html, js_string


def normalise(source: str) -> str:
    return re.sub(r"\s+", " ", source).strip()


def _opts(args: tuple[Any, ...]) -> Any:
    return args[-1]


def plus(*values: Any) -> Any:
    """JavaScript's ``a + b + …``: strings concatenate (as JavaScript prints values), numbers add."""
    total = values[0]
    for value in values[1:]:
        if isinstance(total, str) or isinstance(value, str) or isinstance(total, list | dict) or isinstance(value, list | dict):
            total = _show(total) + _show(value)
        else:
            total = (0 if total is None else total) + (0 if value is None else value)
    return total


def _show(value: Any) -> str:
    if value is UNDEFINED:
        return "undefined"
    if value is None:
        return "null"
    return js_string(value)


def _number_or_nan(value: Any) -> Any:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else "NaN"


def _boolean_or_nab(value: Any) -> Any:
    return value if isinstance(value, bool) else "NaB"


def _list(context: Any, options: Any) -> str:
    if context:
        return "<ul>" + "".join("<li>" + options.fn(item) + "</li>" for item in context) + "</ul>"
    return "<p>" + options.inverse(options.context) + "</p>"


def _goodbye_print(options: Any) -> str:
    if options.hash.get("print") is True:
        return plus("GOODBYE ", options.hash.get("cruel"), " ", options.hash.get("world"))
    return "NOT PRINTING" if options.hash.get("print") is False else "THIS SHOULD NOT HAPPEN"


def _goodbye_print_block(options: Any) -> str:
    if options.hash.get("print") is True:
        return plus("GOODBYE ", options.hash.get("cruel"), " ", options.fn(options.context))
    return "NOT PRINTING" if options.hash.get("print") is False else "THIS SHOULD NOT HAPPEN"


def _ctx(options: Any, key: str) -> Any:
    context = options.context
    return context.get(key, UNDEFINED) if isinstance(context, dict) else UNDEFINED


_BY_SOURCE: dict[str, Callable[..., Any]] = {
    "function () { return 'missing: ' + arguments[arguments.length - 1].name; }": lambda *a: "missing: " + _opts(a).name,
    "function () { return 'helper missing: ' + arguments[arguments.length - 1].name; }": lambda *a: "helper missing: " + _opts(a).name,
    "function () { return 'ran: ' + arguments[arguments.length - 1].name; }": lambda *a: "ran: " + _opts(a).name,
    "function (x, y) { return x === y; }": lambda x, y, o: x == y and type(x) is type(y),
    "function (a, b) { return a + '-' + b; }": lambda a, b, o: plus(a, "-", b),
    "function (options) { return options.fn(); }": lambda o: o.fn(),
    "function () { return 'foo'; }": lambda *a: "foo",
    "function (world) { return 'cruel ' + world.toUpperCase(); }": lambda w, o: "cruel " + w.upper(),
    "function (noun) { return 'Hello ' + noun; }": lambda n, o: plus("Hello ", n),
    "function (a, b) { return a + b; }": lambda a, b, o: plus(a, b),
    "function list(context, options) { if (context.length > 0) { var out = '<ul>'; for (var i = 0, j = context.length; i < j; i++) { out += '<li>'; out += options.fn(context[i]); out += '</li>'; } out += '</ul>'; return out; } else { return '<p>' + options.inverse(this) + '</p>'; } }": _list,
    "function (val) { return 'val is ' + val; }": lambda *a: plus("val is ", a[0] if len(a) > 1 else UNDEFINED),
    "function (value) { return 'bar ' + value; }": lambda *a: plus("bar ", a[0] if len(a) > 1 else UNDEFINED),
    "function (prefix, options) { return ( '<a href=\"' + prefix + '/' + this.url + '\">' + options.fn(this) + '</a>' ); }": lambda p, o: plus('<a href="', p, "/", _ctx(o, "url"), '">', o.fn(o.context), "</a>"),
    "function () {}": lambda *a: UNDEFINED,
    "function (context, options) { return '<form>' + options.fn(context) + '</form>'; }": lambda c, o: "<form>" + o.fn(c) + "</form>",
    "function () { return 'world'; }": lambda *a: "world",
    "function () { return 'helpers'; }": lambda *a: "helpers",
    "function () { return 'helper'; }": lambda *a: "helper",
    "function () { return 'dude'; }": lambda *a: "dude",
    "function (times) { if (typeof times !== 'number') { times = 'NaN'; } return 'Hello ' + times + ' times'; }": lambda *a: plus("Hello ", _number_or_nan(a[0] if len(a) > 1 else None), " times"),
    "function (param) { return 'Hello ' + param; }": lambda *a: plus("Hello ", a[0] if len(a) > 1 else UNDEFINED),
    "function goodbye(options) { if (options.hash.print === true) { return 'GOODBYE ' + options.hash.cruel + ' ' + options.hash.world; } else if (options.hash.print === false) { return 'NOT PRINTING'; } else { return 'THIS SHOULD NOT HAPPEN'; } }": _goodbye_print,
    "function goodbye(options) { if (options.hash.print === true) { return 'GOODBYE ' + options.hash.cruel + ' ' + options.fn(this); } else if (options.hash.print === false) { return 'NOT PRINTING'; } else { return 'THIS SHOULD NOT HAPPEN'; } }": _goodbye_print_block,
    "function (options) { return ( 'GOODBYE ' + options.hash.cruel + ' ' + options.fn(this) + ' ' + options.hash.times + ' TIMES' ); }": lambda o: plus("GOODBYE ", o.hash.get("cruel", UNDEFINED), " ", o.fn(o.context), " ", o.hash.get("times", UNDEFINED), " TIMES"),
    "function (options) { return ( 'GOODBYE ' + options.hash.cruel + ' ' + options.hash.world + ' ' + options.hash.times + ' TIMES' ); }": lambda o: plus("GOODBYE ", o.hash.get("cruel", UNDEFINED), " ", o.hash.get("world", UNDEFINED), " ", o.hash.get("times", UNDEFINED), " TIMES"),
    "function () { return this.goodbye.toUpperCase(); }": lambda *a: _ctx(a[-1], "goodbye").upper(),
    "function (options) { return this.goodbye.toUpperCase() + options.fn(this); }": lambda o: _ctx(o, "goodbye").upper() + o.fn(o.context),
    "function (block) { return block.fn(''); }": lambda o: o.fn(""),
    "function (block) { return block.inverse(''); }": lambda o: o.inverse(""),
    "function (options) { return options.hash.length; }": lambda o: o.hash.get("length", UNDEFINED),
    "function (options) { var hash = options.hash; var ariaLabel = Handlebars.Utils.escapeExpression(hash['aria-label']); var placeholder = Handlebars.Utils.escapeExpression(hash.placeholder); return new Handlebars.SafeString( '<input aria-label=\"' + ariaLabel + '\" placeholder=\"' + placeholder + '\" />' ); }": lambda o: SafeString('<input aria-label="' + escape_html(js_string(o.hash.get("aria-label"))) + '" placeholder="' + escape_html(js_string(o.hash.get("placeholder"))) + '" />'),
    "function (defaultString) { return new Handlebars.SafeString(defaultString); }": lambda d, o: SafeString(js_string(d)),
    "function (prefix) { return ( '<a href=\"' + prefix + '/' + this.url + '\">' + this.text + '</a>' ); }": lambda p, o: plus('<a href="', p, "/", _ctx(o, "url"), '">', _ctx(o, "text"), "</a>"),
    "function (a, b, c, options) { return options.fn() + a + b + c; }": lambda a, b, c, o: plus(o.fn(), a, b, c),
    "function (options) { var out = ''; var byes = ['Goodbye', 'goodbye', 'GOODBYE']; for (var i = 0, j = byes.length; i < j; i++) { out += byes[i] + ' ' + options.fn(this) + '! '; } return out; }": lambda o: "".join(b + " " + o.fn(o.context) + "! " for b in ("Goodbye", "goodbye", "GOODBYE")),
    "function (options) { var out = ''; var byes = ['Goodbye', 'goodbye', 'GOODBYE']; for (var i = 0, j = byes.length; i < j; i++) { out += byes[i] + ' ' + options.fn({}) + '! '; } return out; }": lambda o: "".join(b + " " + o.fn({}) + "! " for b in ("Goodbye", "goodbye", "GOODBYE")),
    "function (options) { return options.fn({ text: 'GOODBYE' }); }": lambda o: o.fn({"text": "GOODBYE"}),
    "function (options) { return '<form>' + options.fn(this) + '</form>'; }": lambda o: "<form>" + o.fn(o.context) + "</form>",
    "function link(options) { return '<a href=\"/people/' + this.id + '\">' + options.fn(this) + '</a>'; }": lambda o: plus('<a href="/people/', _ctx(o, "id"), '">', o.fn(o.context), "</a>"),
    "function (options) { return '<a href=\"' + this.name + '\">' + options.fn(this) + '</a>'; }": lambda o: plus('<a href="', _ctx(o, "name"), '">', o.fn(o.context), "</a>"),
    "function (times, times2) { if (typeof times !== 'number') { times = 'NaN'; } if (typeof times2 !== 'number') { times2 = 'NaN'; } return 'Hello ' + times + ' ' + times2 + ' times'; }": lambda t, t2, o: plus("Hello ", _number_or_nan(t), " ", _number_or_nan(t2), " times"),
    "function (param, times, bool1, bool2) { if (typeof times !== 'number') { times = 'NaN'; } if (typeof bool1 !== 'boolean') { bool1 = 'NaB'; } if (typeof bool2 !== 'boolean') { bool2 = 'NaB'; } return ( 'Hello ' + param + ' ' + times + ' times: ' + bool1 + ' ' + bool2 ); }": lambda p, t, b1, b2, o: plus("Hello ", p, " ", _number_or_nan(t), " times: ", _boolean_or_nab(b1), " ", _boolean_or_nab(b2)),
    "function (cruel, world) { return 'Goodbye ' + cruel + ' ' + world; }": lambda c, w, o: plus("Goodbye ", c, " ", w),
    "function (cruel, world, options) { return options.fn({ greeting: 'Goodbye', adj: cruel, noun: world }); }": lambda c, w, o: o.fn({"greeting": "Goodbye", "adj": c, "noun": w}),
    "function (mesg, options) { if (options.name === 'link_to') { return new Handlebars.SafeString('<a>' + mesg + '</a>'); } }": lambda m, o: SafeString(plus("<a>", m, "</a>")) if o.name == "link_to" else UNDEFINED,
    "function (options) { if (options.name === 'link_to') { return new Handlebars.SafeString('<a>winning</a>'); } }": lambda o: SafeString("<a>winning</a>") if o.name == "link_to" else UNDEFINED,
    "function (value) { return value + ''; }": lambda v, o: plus(v, ""),
    "function (options) { return new Handlebars.SafeString(options.fn()); }": lambda o: SafeString(o.fn()),
    "function (conditional, options) { if (conditional) { return options.fn(this); } else { return options.inverse(this); } }": lambda c, o: o.fn(o.context) if c else o.inverse(o.context),
    "function (val) { return val + val; }": lambda *a: plus(a[0] if len(a) > 1 else UNDEFINED, a[0] if len(a) > 1 else UNDEFINED),
    "function () { return 'LOL'; }": lambda *a: "LOL",
    "function (val, that, theOther) { return 'val is ' + val + ', ' + that + ' and ' + theOther; }": lambda v, t, th, o: plus("val is ", v, ", ", t, " and ", th),
    "function (options) { return 'val is ' + options.hash.fun; }": lambda o: plus("val is ", o.hash.get("fun", UNDEFINED)),
}

PORTED: dict[str, Callable[..., Any]] = {normalise(k): v for k, v in _BY_SOURCE.items()}
