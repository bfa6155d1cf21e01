"""Parse and check an Alerter XML template (guide 9.2.1).

The template is read with the standard library's expat parser, with every DTD feature
refused: a ``<!DOCTYPE>`` or an entity declaration is an error, so no entity can expand
(the "billion laughs") and no external file or URL can be read (XXE).  No third-party
parser (``defusedxml``) is needed for a document this small whose grammar has no DTD.
"""

from __future__ import annotations

import re
import xml.parsers.expat
from typing import Any

import attrs

ELEMENTS = ("text", "image", "button")
ATTRIBUTES = {"text": ("x", "y", "directory"), "image": ("x", "y", "directory"), "button": ("x", "y", "directory", "url", "exe")}
MAX_SIZE = 64_000
"""Characters of one template."""
MAX_ELEMENTS = 200
FIELD = re.compile(r"\[-([^\[\]]*?)-\]")


class TemplateError(ValueError):
    """The template is refused; ``problems`` lists each one as ``line N: what is wrong; the fix``."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@attrs.frozen
class Element:
    """One ``<text>``, ``<image>`` or ``<button>`` of a template."""

    kind: str
    content: str
    """The text, the image URL or the button's label, with its ``[-Field-]`` markers."""
    x: int | None = None
    y: int | None = None
    directories: tuple[str, ...] | None = None
    """``directory=``: shown only when the caller was found in one of these (``none``: in no directory)."""
    url: str | None = None
    exe: str | None = None
    line: int = 0


@attrs.frozen
class Template:
    vip: bool
    """``<alerter vip="true">``: a VIP caller's card takes the VIP colour."""
    elements: tuple[Element, ...]

    def fields(self) -> set[str]:
        """Every ``[-Field-]`` name the template uses."""
        out: set[str] = set()
        for e in self.elements:
            for text in (e.content, e.url or "", e.exe or ""):
                out.update(FIELD.findall(text))
        return out


def _markers(text: str, where: str, line: int, problems: list[str]) -> None:
    rest = FIELD.sub("", text)
    if "[-" in rest or "-]" in rest:
        problems.append(f"line {line}: {where} has an unbalanced field marker in {text[:60]!r}; write fields as [-DisplayName-]")


def parse(source: str) -> Template:
    """The template, or ``TemplateError`` listing every problem found with its line."""
    if len(source) > MAX_SIZE:
        raise TemplateError([f"the template has {len(source)} characters; at most {MAX_SIZE} are accepted, shorten it"])
    problems: list[str] = []
    stack: list[tuple[str, dict[str, str], int, list[str]]] = []
    root: dict[str, Any] = {}
    elements: list[Element] = []
    parser = xml.parsers.expat.ParserCreate()
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def refuse_dtd(*_: Any) -> int:
        raise TemplateError([f"line {parser.CurrentLineNumber}: a DOCTYPE or entity declaration is not allowed in an Alerter template; remove it"])

    def start(name: str, attributes: dict[str, str]) -> None:
        line = parser.CurrentLineNumber
        if not stack and not root:
            if name != "alerter":
                problems.append(f"line {line}: the root element is <{name}>; an Alerter template starts with <alerter>")
            for key, value in attributes.items():
                if key != "vip":
                    problems.append(f'line {line}: <alerter> has no attribute {key}; the only one is vip="true" or vip="false"')
                elif value.lower() not in ("true", "false"):
                    problems.append(f'line {line}: vip="{value}"; write vip="true" or vip="false"')
            root.update(name=name, vip=attributes.get("vip", "false").lower() == "true", line=line)
            stack.append((name, attributes, line, []))
            return
        if len(stack) >= 2:
            problems.append(f"line {line}: <{name}> inside <{stack[-1][0]}>; <text>, <image> and <button> hold text only")
        elif name not in ELEMENTS:
            problems.append(f"line {line}: unknown element <{name}>; use <text>, <image> or <button>")
        else:
            for key in attributes:
                if key not in ATTRIBUTES[name]:
                    problems.append(f"line {line}: <{name}> has no attribute {key}; it accepts {', '.join(ATTRIBUTES[name])}")
        stack.append((name, attributes, line, []))

    def end(name: str) -> None:
        tag, attributes, line, texts = stack.pop()
        if not stack or len(stack) >= 2 or tag not in ELEMENTS:
            return
        content = "".join(texts).strip()
        element = _element(tag, attributes, content, line, problems)
        if element is not None:
            elements.append(element)

    def text(data: str) -> None:
        if stack:
            stack[-1][3].append(data)

    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_dtd
    parser.ExternalEntityRefHandler = refuse_dtd
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(source, True)
    except xml.parsers.expat.ExpatError as exc:
        where = f"line {exc.lineno}, column {exc.offset + 1}" if exc.lineno else "the template"
        raise TemplateError([f"{where}: not well-formed XML ({xml.parsers.expat.ErrorString(exc.code)}); "
                             "check that every tag is closed and that & is written &amp;"]) from None
    if not root:
        problems.append("the template is empty; write <alerter> ... </alerter>")
    elif not elements and not problems:
        problems.append(f"line {root['line']}: <alerter> shows nothing; add a <text>, <image> or <button>")
    if len(elements) > MAX_ELEMENTS:
        problems.append(f"the template has {len(elements)} elements; at most {MAX_ELEMENTS} fit in a window")
    if problems:
        raise TemplateError(problems)
    return Template(bool(root.get("vip")), tuple(elements))


def _element(tag: str, attributes: dict[str, str], content: str, line: int, problems: list[str]) -> Element | None:
    before = len(problems)
    coords: dict[str, int | None] = {"x": None, "y": None}
    for key in ("x", "y"):
        raw = attributes.get(key)
        if raw is None:
            continue
        if not re.fullmatch(r"\d{1,5}", raw.strip()):
            problems.append(f'line {line}: <{tag}> {key}="{raw}"; give a position in pixels from the upper left corner, such as {key}="10"')
        else:
            coords[key] = int(raw)
    directories: tuple[str, ...] | None = None
    if "directory" in attributes:
        names = tuple(n.strip() for n in attributes["directory"].split(","))
        if not attributes["directory"].strip() or any(not n for n in names):
            problems.append(f'line {line}: <{tag}> directory="{attributes["directory"]}"; name directories separated by commas, or "none"')
        directories = names
    if not content:
        problems.append(f"line {line}: <{tag}> is empty; write the {'image URL' if tag == 'image' else 'text to show'} between the tags")
    _markers(content, f"<{tag}>", line, problems)
    url, exe = attributes.get("url"), attributes.get("exe")
    if tag == "image" and content and not re.match(r"^(https?://|\[-)", content, re.I):
        problems.append(f"line {line}: <image> {content[:60]!r} is not a web address; give an http:// or https:// URL or a field such as [-Picture-]")
    if tag == "button":
        if url is None and exe is None:
            problems.append(f'line {line}: <button> does nothing; add url="https://..." (opened in the browser) '
                            'or exe="..." (run by the desktop client)')
        if url is not None:
            if not re.match(r"^(https?://|mailto:|tel:|\[-)", url.strip(), re.I):
                problems.append(f'line {line}: <button> url="{url[:60]}"; give an http://, https://, mailto: or tel: address')
            _markers(url, "url=", line, problems)
        if exe is not None:
            _markers(exe, "exe=", line, problems)
    if len(problems) > before:
        return None
    return Element(tag, content, coords["x"], coords["y"], directories, url, exe, line)
