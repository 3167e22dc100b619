"""A Handlebars engine for untrusted row templates: parser + closures, never code.

Public API (the sync and the CRUD validation build on it):
``compile_template(source) -> Template``; ``Template.render(context, *, data=None,
helpers=None, partials=None, escape="html")``; ``Template.renderer(root_key, data_name,
escape)`` (a render function of one envelope, for rows); and the LbApiPayloadTemplate
layer ``parse_payload_template`` → ``PayloadTemplate.route`` / ``.render_row``.
"""

from hub_stream.templating.errors import TemplateError, TemplateRenderError, TemplateSyntaxError
from hub_stream.templating.payload import (
    PayloadTemplate,
    PayloadTemplateError,
    RenderedRow,
    RouteEntry,
    RowRenderError,
    parse_payload_template,
)
from hub_stream.templating.runtime import Options
from hub_stream.templating.template import Template, compile_template
from hub_stream.templating.values import UNDEFINED, SafeString

__all__ = [
    "UNDEFINED",
    "Options",
    "PayloadTemplate",
    "PayloadTemplateError",
    "RenderedRow",
    "RouteEntry",
    "RowRenderError",
    "SafeString",
    "Template",
    "TemplateError",
    "TemplateRenderError",
    "TemplateSyntaxError",
    "compile_template",
    "parse_payload_template",
]
