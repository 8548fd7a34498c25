"""The README reference table of a tuple of declared settings (setting, type, default, description).

Rendered from the same `Setting` tuples the config is read with, so the
documented defaults and bounds are those applied; `tools/readme_settings.py`
writes the tables into README.md and checks they are current.
"""

from __future__ import annotations

from forwarder.schema.declared import IGNORED, REJECTED, Setting
from forwarder.schema.section import REQUIRED

HEADER = "| setting | type | default | description |\n|---|---|---|---|"


def render_table(settings: tuple[Setting, ...]) -> str:
    """A Markdown table; consecutive settings with the same type, default and description share a row."""
    rows: list[tuple[list[str], str, str, str]] = []
    for setting in settings:
        cells = (type_text(setting), default_text(setting), setting.doc)
        if rows and rows[-1][1:] == cells:
            rows[-1][0].append(setting.name)
        else:
            rows.append(([setting.name], *cells))
    lines = [HEADER]
    for names, *cells in rows:
        shown = ", ".join(f"`{name}`" for name in names)
        lines.append("| " + " | ".join(_escape(cell) for cell in (shown, *cells)) + " |")
    return "\n".join(lines)


def type_text(setting: Setting) -> str:
    text = setting.type.name
    if setting.choices:
        text = "one of " + ", ".join(f"`{choice}`" for choice in setting.choices)
    elif setting.positive:
        text += " > 0"
    elif setting.minimum is not None and setting.maximum is not None:
        text += f" {setting.minimum}–{setting.maximum}"
    elif setting.minimum is not None:
        text += f" ≥ {setting.minimum}"
    elif setting.maximum is not None:
        text += f" ≤ {setting.maximum}"
    return text + (", secret" if setting.secret else "")


def default_text(setting: Setting) -> str:
    default = setting.default
    if setting.doc_default is not None:
        return setting.doc_default
    if default is REQUIRED:
        return "required"
    if setting.type in (IGNORED, REJECTED) or default is None or default == []:
        return "—"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if default == "":
        return '`""`'
    return f"`{default}`"


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\n", " ")
