"""The ``spec-reference`` directive: the spec's sections, components and fields, read off the
registries at build time (:mod:`pgtorchrl.pipeline.reference`, the source of ``pgtorchrl list``),
so the page cannot drift from what a spec accepts."""

from __future__ import annotations

from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

from pgtorchrl.pipeline.reference import REQUIRED, FieldDoc, component_sections, fixed_sections, top_level_fields


def _literal(text: str) -> str:
    return f"``{text}``" if text else " "


def _table(rows: tuple[FieldDoc, ...]) -> list[str]:
    if not rows:
        return ["No fields.", ""]
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 18 22 15 45",
        "",
        "   * - field",
        "     - type",
        "     - default",
        "     - doc",
    ]
    for f in rows:
        default = "required" if f.default is REQUIRED else _literal(f.default_yaml)
        lines += [f"   * - ``{f.name}``", f"     - {_literal(f.type)}", f"     - {default}", f"     - {f.doc or ' '}"]
    return [*lines, ""]


def _heading(text: str, char: str) -> list[str]:
    return [text, char * max(len(text), 4), ""]


def spec_reference_rst() -> list[str]:
    """The reference as reStructuredText lines."""
    lines = [*_heading("Top-level keys", "-"), *_table(top_level_fields())]
    for section in component_sections():
        also = "".join(f" ``{n}`` takes the same components." for n in section.also)
        lines += _heading(f"{section.name}", "-")
        lines += [f"{section.summary}{also} Its ``name`` picks one of the components below.", ""]
        for c in section.components:
            lines += _heading(f"{section.name}: {c.name}", "~")
            lines += [(c.summary or "(no summary)") + (" *TorchRL's own class.*" if c.is_torchrl else ""), ""]
            lines += _table(c.fields)
    for section in fixed_sections():
        lines += _heading(section.name, "-")
        lines += [section.summary, "", *_table(section.fields)]
    return lines


class SpecReference(SphinxDirective):
    """``.. spec-reference::`` (in a reStructuredText page: its output is reStructuredText)."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(
            self.state, StringList(spec_reference_rst(), source="pgtorchrl.pipeline.reference"), container
        )
        return container.children


def _always_reread(app, env, added, changed, removed):
    """The pages with the directive: read again on every build, because what they show comes
    from the code (the registries), which Sphinx does not see change."""
    return [doc for doc in sorted(env.found_docs) if ".. spec-reference::" in Path(env.doc2path(doc)).read_text()]


def setup(app):
    app.add_directive("spec-reference", SpecReference)
    app.connect("env-get-outdated", _always_reread)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
