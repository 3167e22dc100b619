"""Boolean.* helpers (Handlebars.Net.Helpers BooleanHelpers). Arguments are true, false or their text; null is false."""

from __future__ import annotations

from hub_stream.templating.net_helpers.core import net_helper

_TWO = "value:bool test:bool"

net_helper("Boolean.Equal", _TWO)(lambda value, test: value == test)
net_helper("Boolean.NotEqual", _TWO)(lambda value, test: value != test)
net_helper("Boolean.Not", "value:bool")(lambda value: not value)
net_helper("Boolean.And", _TWO)(lambda value, test: value and test)
net_helper("Boolean.LogicalAnd", _TWO)(lambda value, test: value and test)
net_helper("Boolean.Or", _TWO)(lambda value, test: value or test)
net_helper("Boolean.LogicalOr", _TWO)(lambda value, test: value or test)
net_helper("Boolean.LogicalXor", _TWO)(lambda value, test: value != test)
