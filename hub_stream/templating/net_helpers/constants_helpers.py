"""Constants.* helpers (Handlebars.Net.Helpers ConstantsHelpers)."""

from __future__ import annotations

import math

from hub_stream.templating.net_helpers.core import net_helper

net_helper("Constants.Math.E")(lambda: math.e)
net_helper("Constants.Math.PI")(lambda: math.pi)
