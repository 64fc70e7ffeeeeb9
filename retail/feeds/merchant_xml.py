"""Google Merchant Center XML feeds (RSS 2.0 or Atom 1.0), read safely and as a stream.

Each `<item>` (RSS) or `<entry>` (Atom) becomes a dict of attribute names to text:
`<g:image_link>` → "image_link". Besides the `g:` elements (namespace
http://base.google.com/ns/1.0), an RSS item's plain `<title>`, `<link>`, `<description>`
and an Atom entry's `<title>`, `<link href="…">` and `<summary>` count, below a `g:`
element of the same name. An Atom `<id>` is the entry's URI, not the product's id: only
`<g:id>` is. The first of repeated elements wins; nested elements (`<g:shipping>`) are
not read.

Safety: a DOCTYPE is refused before anything it declares is used, so no entity is ever
expanded (no "billion laughs", no local files read). Memory: the file is fed to expat in
chunks and only the item being read is held (`iterparse` would do the same but cannot say
on which line an item starts, nor refuse a DOCTYPE up front). An item's problems carry
the line its start tag is on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

from retail.errors import RetailDataError, RowProblem
from retail.loaders import MAX_LINE_CHARS

G_NS = "http://base.google.com/ns/1.0"
ATOM_NS = "http://www.w3.org/2005/Atom"
_CHUNK = 64 * 1024
# Elements of the item's own vocabulary, below the same-named g: element.
_RSS_PLAIN = {"title": "title", "link": "link", "description": "description"}
_ATOM_PLAIN = {"title": "title", "link": "link", "summary": "description"}

#: an item whose text is longer than this is a bad row (see `XmlItem.oversized`)
MAX_ITEM_CHARS = MAX_LINE_CHARS


class _Refused(Exception):
    """Raised from an expat handler: the file is not a feed we read."""

    def __init__(self, line: int, field: str, problem: str) -> None:
        super().__init__(problem)
        self.problem = (line, field, problem)


@dataclass
class XmlItem:
    """One `<item>`/`<entry>`: its attributes' text and the line its start tag is on."""

    line: int
    values: dict[str, str] = field(default_factory=dict)
    oversized: bool = False


@dataclass
class _Reader:
    """expat's handlers for one feed: keeps the item being read, queues finished ones."""

    parser: expat.XMLParserType
    depth: int = 0
    item_depth: int = 0  # the depth of items: 3 in RSS (rss/channel/item), 2 in Atom
    item_tag: str = ""
    plain: dict[str, str] = field(default_factory=dict)
    item: XmlItem | None = None
    chars: int = 0
    # the attribute being read: (name, priority); its text so far
    reading: tuple[str, int] | None = None
    text: list[str] = field(default_factory=list)
    priority: dict[str, int] = field(default_factory=dict)
    done: list[XmlItem] = field(default_factory=list)

    def start(self, name: str, attrs: dict[str, str]) -> None:
        self.depth += 1
        ns, _, local = name.rpartition(" ")
        line = self.parser.CurrentLineNumber
        if self.depth == 1:
            self._root(ns, local, line)
        elif self.depth == self.item_depth and name == self.item_tag:
            self.item, self.chars, self.priority = XmlItem(line), 0, {}
        elif self.depth == self.item_depth + 1 and self.item is not None:
            attribute = local if ns == G_NS else self.plain.get(local) if ns == self._own else None
            if attribute is None:
                return
            priority = 2 if ns == G_NS else 1
            if self.priority.get(attribute, 0) >= priority:
                return  # the first of repeated elements wins; g: wins over plain
            if ns == ATOM_NS and local == "link":  # <link rel="alternate" href="…"/>
                if attrs.get("rel", "alternate") == "alternate" and "href" in attrs:
                    self._keep(attribute, priority, attrs["href"])
                return
            self.reading, self.text = (attribute, priority), []

    @property
    def _own(self) -> str:
        """The namespace of the feed's own elements: none in RSS, Atom's in Atom."""
        return ATOM_NS if self.item_tag == f"{ATOM_NS} entry" else ""

    def _root(self, ns: str, local: str, line: int) -> None:
        if (ns, local) == ("", "rss"):
            self.item_depth, self.item_tag, self.plain = 3, "item", _RSS_PLAIN
        elif (ns, local) == (ATOM_NS, "feed"):
            self.item_depth, self.item_tag, self.plain = 2, f"{ATOM_NS} entry", _ATOM_PLAIN
        else:
            raise _Refused(
                line,
                "xml",
                f"the root element is <{local[:40]}>, not <rss> (RSS 2.0) or <feed> "
                "(Atom 1.0) of a Merchant Center feed",
            )

    def _keep(self, attribute: str, priority: int, value: str) -> None:
        assert self.item is not None
        self.item.values[attribute] = value.strip()
        self.priority[attribute] = priority

    def data(self, text: str) -> None:
        if self.item is None:
            return
        self.chars += len(text)
        if self.chars > MAX_ITEM_CHARS:
            self.item.oversized = True
            self.reading = None
            self.item.values.clear()  # only the line is reported
        elif self.reading is not None and self.depth == self.item_depth + 1:
            self.text.append(text)

    def end(self, name: str) -> None:
        if self.reading is not None and self.depth == self.item_depth + 1:
            self._keep(*self.reading, "".join(self.text))
            self.reading = None
        elif self.depth == self.item_depth and self.item is not None and name == self.item_tag:
            self.done.append(self.item)
            self.item = None
        self.depth -= 1


def _refuse_doctype(*_args: object) -> None:
    raise _Refused(0, "xml", "")  # the line and problem are filled in by the caller


def _refuse_external(*_args: object) -> int:
    raise _Refused(0, "xml", "")  # unreachable without a DOCTYPE; kept as a second lock


def iter_items(path: Path) -> Iterator[XmlItem]:
    """Each item of the Merchant Center XML feed at `path`, as it is read.

    Raises RetailDataError for a file that is not one: not well-formed, another root
    element, or with a DOCTYPE (refused whole: its entities could expand without bound or
    read local files).
    """
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.buffer_text = True
    reader = _Reader(parser)
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.data
    # A DOCTYPE is refused at its start, before its entity declarations are read.
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_doctype
    parser.ExternalEntityRefHandler = _refuse_external
    try:
        raw = path.open("rb")
    except OSError as exc:
        why = "file not found" if isinstance(exc, FileNotFoundError) else "cannot be read"
        raise RetailDataError(
            [RowProblem(path, 0, "file", why)], hint="check the path and try again"
        ) from None
    with raw:
        try:
            while chunk := raw.read(_CHUNK):
                parser.Parse(chunk, False)
                yield from reader.done
                reader.done.clear()
            parser.Parse(b"", True)
        except _Refused as exc:
            line, name, problem = exc.problem
            if not problem:  # the DOCTYPE
                line, problem = (
                    parser.CurrentLineNumber,
                    (
                        "a DOCTYPE declaration is not allowed in a product feed (its entities "
                        "could expand without bound or read local files)"
                    ),
                )
            raise RetailDataError(
                [RowProblem(path, line, name, problem)],
                hint="export the feed again without a DOCTYPE, or fix the file",
            ) from None
        except expat.ExpatError as exc:
            problem = f"not well-formed XML ({expat.ErrorString(exc.code)})"
            raise RetailDataError(
                [RowProblem(path, exc.lineno, "xml", problem)],
                hint="the feed must be well-formed XML: export it again",
            ) from None
        yield from reader.done
