"""Strict SVG: XML without DTDs or entities, drawing elements only, every text and attribute as content.

Why review at best: an SVG drawn inside the sandbox can encode values in its coordinates, and no
rule can tell a bar's height from a smuggled number, so a person looks at it (charts that may pass
are the ones the platform renders itself, ``sandbox.guard.charts``). What the reader refuses are the
parts a person would not see or that act on their own: scripts, event handlers, embedded or linked
images and documents, external references, animation. Comments and processing instructions are
probed and then dropped from the canonical file.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from sandbox.guard.content import Content
from sandbox.guard.readers.strict import hard, read_text

FORMAT = "SVG"
SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
DRAWING = {
    "svg", "g", "path", "rect", "circle", "ellipse", "line", "polyline", "polygon", "text", "tspan", "title",
    "desc", "defs", "clipPath", "mask", "linearGradient", "radialGradient", "stop", "symbol", "use", "marker",
    "pattern", "style", "metadata",
}  # fmt: skip
_DECLARATIONS = re.compile(r"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.I)
#: The one declaration drawing programs write (matplotlib): SVG 1.1's public DTD, no internal subset.
_SVG11_DOCTYPE = re.compile(
    r'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1\.1//EN"\s+"http://www\.w3\.org/Graphics/SVG/1\.1/DTD/svg11\.dtd">'
)
_EXTERNAL_CSS = re.compile(r"@import|url\(\s*['\"]?\s*(?!#)", re.I)


def _local(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


#: The tree builder's tags for comments and processing instructions (factories, not names).
_NOT_ELEMENTS: tuple[object, ...] = (ET.Comment, ET.ProcessingInstruction)


def _check_element(element: ET.Element, inside_metadata: bool) -> str | None:
    namespace, local = _local(element.tag)
    if not inside_metadata and (namespace not in (SVG_NS, "") or local not in DRAWING):
        return f"element <{local}> is not a drawing element (scripts, images, links, embedded documents refused)"
    for key, value in element.attrib.items():
        _, attribute = _local(key)
        if attribute.lower().startswith("on"):
            return "an event-handler attribute"
        if attribute == "href" and not value.startswith("#"):
            return "a reference outside the drawing"
        if attribute == "style" and _EXTERNAL_CSS.search(value):
            return "a style that loads something from outside"
    if local == "style" and _EXTERNAL_CSS.search(element.text or ""):
        return "a style sheet that loads something from outside"
    return None


def read(path: Path, name: str) -> Content:
    content = Content(name, FORMAT, image=True)
    text = read_text(path, content)
    if text is None:
        return content
    if _DECLARATIONS.search(_SVG11_DOCTYPE.sub("", text, count=1)):
        content.findings.append(hard("svg.declarations", name, "file", "DTD or entity declarations"))
        return content
    builder = ET.TreeBuilder(insert_comments=True, insert_pis=True)
    try:
        parser = ET.XMLParser(target=builder)
        parser.feed(text)
        root = parser.close()
    except ET.ParseError:
        content.findings.append(hard("svg.malformed", name, "file", "not well-formed XML"))
        return content
    if _local(root.tag) != (SVG_NS, "svg") and _local(root.tag)[1] != "svg":
        content.findings.append(hard("svg.malformed", name, "file", "the root element is not <svg>"))
        return content
    texts, attributes, comments = _walk(root, content, name)
    content.add_text("text", texts)
    content.add_sequence("text", texts)
    content.add_text("attributes", attributes)
    content.add_text("comments", comments)
    if not content.findings:
        content.canonical = _canonical(root)
    return content


def _walk(root: ET.Element, content: Content, name: str) -> tuple[list[str], list[str], list[str]]:
    texts: list[str] = []
    attributes: list[str] = []
    comments: list[str] = []
    stack: list[tuple[ET.Element, bool]] = [(root, False)]
    while stack:
        element, in_metadata = stack.pop()
        for part in (element.text, element.tail):
            if part and part.strip():
                (comments if element.tag in _NOT_ELEMENTS else texts).append(part.strip())
        if element.tag in _NOT_ELEMENTS:
            continue
        problem = _check_element(element, in_metadata)
        if problem:
            content.findings.append(hard("svg.element", name, "file", problem))
        attributes.extend(element.attrib.values())
        attributes.extend(_local(k)[1] for k in element.attrib)
        metadata = in_metadata or _local(element.tag)[1] == "metadata"
        stack.extend((child, metadata) for child in element)
    return texts, attributes, comments


def _canonical(root: ET.Element) -> bytes:
    """The tree again without comments and processing instructions."""
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag in _NOT_ELEMENTS:
                if child.tail:
                    previous = parent.text or ""
                    parent.text = previous + child.tail
                parent.remove(child)
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", XLINK_NS)
    canonical: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return canonical


__all__ = ["FORMAT", "read"]
