"""The one renderer for a flow's text templates: Prompt ``template``, Memory ``template``,
Parser ``pattern``.

A template holds plain ``{name}`` placeholders and literal text (``{{``/``}}`` are literal
braces), as LangChain's f-string prompts and LangFlow's ``str.format`` calls read them.
Anything more is refused: a format spec (``{x:>30000000}`` is a 30 MB string from a few
bytes), a conversion (``{x!r}``), attribute or index access (``{x.y}``, ``{x[0]}``). Plain
placeholders still multiply (a template of many ``{text}`` times a long text), so the
rendered text is built piece by piece and refused once it would pass
``FLOWFLEET_MAX_RENDERED_CHARS`` (``Settings.max_rendered_chars``): memory stays bounded
whatever the template and the values. A missing name renders as the empty string, as in
LangFlow's templates.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from shared.settings import get_settings

_FORMATTER = string.Formatter()


class TemplateError(ValueError):
    """A template flowfleet refuses to render (names the placeholder at fault)."""


class TemplateTooLarge(TemplateError):
    """The rendered text would pass the rendered-size cap."""


def _pieces(template: str) -> Iterator[tuple[str, str | None]]:
    # (literal text, placeholder name or None), each placeholder checked to be plain.
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:  # a lone { or }
        raise TemplateError(f"{exc}; write literal braces as {{{{ and }}}}") from None
    for literal, name, spec, conversion in parsed:
        if name is None:
            yield literal, None
            continue
        if spec or conversion is not None or not name.isidentifier():
            shown = "{" + name + (f"!{conversion}" if conversion else "")
            shown += (f":{spec}" if spec else "") + "}"
            raise TemplateError(
                f"placeholder {shown} is not allowed: templates take plain {{name}} "
                "placeholders only (no format spec, conversion, attribute or index)"
            )
        yield literal, name


def template_variables(template: str) -> list[str]:
    """The names a template's placeholders use, in order, once each. Raises TemplateError."""
    names: list[str] = []
    for _, name in _pieces(template):
        if name is not None and name not in names:
            names.append(name)
    return names


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def render_joined(
    template: str,
    rows: Iterable[Mapping[str, Any]],
    sep: str = "\n",
    *,
    max_chars: int | None = None,
) -> str:
    """The template rendered once per row, joined with ``sep``, within the size cap.

    Raises TemplateError (a placeholder that is not plain) or TemplateTooLarge.
    """
    limit = get_settings().max_rendered_chars if max_chars is None else max_chars
    pieces = list(_pieces(template))
    out: list[str] = []
    size = 0

    def add(text: str) -> None:
        nonlocal size
        size += len(text)
        if size > limit:  # checked before the piece is kept: memory stays near the cap
            raise TemplateTooLarge(
                f"the rendered text would pass {limit} characters "
                "(FLOWFLEET_MAX_RENDERED_CHARS); shorten the template or its inputs"
            )
        out.append(text)

    for index, row in enumerate(rows):
        if index:
            add(sep)
        for literal, name in pieces:
            add(literal)
            if name is not None:
                add(_text(row.get(name)))
    return "".join(out)


def render_template(
    template: str, values: Mapping[str, Any], *, max_chars: int | None = None
) -> str:
    """The template with each ``{name}`` replaced by ``values[name]`` (missing: empty)."""
    return render_joined(template, [values], max_chars=max_chars)
