"""Hostile templates: nothing reaches Python objects, files or code; every limit holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub_stream.templating import (
    TemplateError,
    TemplateRenderError,
    TemplateSyntaxError,
    compile_template,
)


@pytest.mark.parametrize(
    "source",
    [
        "{{[x') or __import__('os').system('touch PWNED') or ('] }}",
        "{{__class__}}{{this.__class__}}{{this.__class__.__mro__}}{{__proto__}}{{constructor}}",
        '{{lookup this "__class__"}}{{lookup this "__dict__"}}{{lookup s "upper"}}',
        "{{s.__len__}}{{s.upper}}{{xs.append}}{{xs.__class__.__base__.__subclasses__}}",
        "{{#with __builtins__}}{{open}}{{/with}}{{__globals__}}{{@root.__class__}}",
    ],
)
def test_no_python_attribute_is_reachable(source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = compile_template(source).render({"s": "text", "xs": [1]})
    assert "class" not in out and "method" not in out and "function" not in out
    assert out.strip(" ") == ""
    assert not (tmp_path / "PWNED").exists()


def test_recursive_partial_stops_with_an_error() -> None:
    with pytest.raises(TemplateRenderError, match="deeper than"):
        compile_template("{{> loop}}").render({}, partials={"loop": "x{{> loop}}"})


def test_exponential_output_is_bounded() -> None:
    source = "{{#each a}}" * 6 + "{{this}}" + "{{/each}}" * 6
    xs = list(range(30))
    with pytest.raises(TemplateRenderError, match="(larger than|time limit)"):
        compile_template(source.replace("{{#each a}}", "{{#each ../a}}", 0)).render(
            {"a": [{"a": [{"a": [{"a": [{"a": [{"a": xs}] * 30}] * 30}] * 30}] * 30}] * 30}, max_output=100_000
        )


def test_time_limit() -> None:
    big = {"xs": list(range(2000))}
    source = "{{#each xs}}{{#each ../xs}}{{/each}}{{/each}}"
    with pytest.raises(TemplateRenderError, match="time limit"):
        compile_template(source).render(big, time_limit=0.05)


def test_deep_block_nesting_is_refused_at_parse_time() -> None:
    with pytest.raises(TemplateSyntaxError, match="nested deeper"):
        compile_template("{{#if a}}" * 150 + "{{/if}}" * 150)


def test_oversized_source_is_refused() -> None:
    with pytest.raises(TemplateSyntaxError, match="longer than"):
        compile_template("x" * (256 * 1024 + 1))


def test_helper_exception_becomes_a_render_error() -> None:
    def boom(options: object) -> str:
        raise RuntimeError("kaput")

    with pytest.raises(TemplateRenderError, match="helper 'boom' failed: RuntimeError: kaput"):
        compile_template("{{boom}}").render({}, helpers={"boom": boom})


def test_non_string_template_is_refused() -> None:
    with pytest.raises(TemplateError):
        compile_template(123)  # type: ignore[arg-type]


# The one module that turns generated source into a function, and how often it
# may: once each. Its source holds no template text (test_codegen.py fuzzes that).
CODE_GENERATOR = "codegen.py"
GENERATOR_CALLS = {"compile": 1, "exec": 1}


def test_engine_never_compiles_or_evals_text() -> None:
    """No call of eval, exec, compile, getattr or __import__, and no importlib, anywhere in the engine.

    Except: codegen.py compiles and runs the source it generated, once each.
    """
    import ast

    import hub_stream.templating as pkg

    banned = {"eval", "exec", "compile", "getattr", "__import__", "setattr", "vars", "globals"}
    generator_calls: dict[str, int] = {}
    for path in Path(pkg.__file__).parent.rglob("*.py"):  # the helper packages too
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if path.name == CODE_GENERATOR and node.func.id in GENERATOR_CALLS:
                    generator_calls[node.func.id] = generator_calls.get(node.func.id, 0) + 1
                    continue
                assert node.func.id not in banned, f"{path.name}:{node.lineno} calls {node.func.id}"
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.startswith("importlib") for n in names), f"{path.name}:{node.lineno}"
    assert generator_calls == GENERATOR_CALLS
