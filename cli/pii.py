"""`reelcast pii scan FILE`: where personal data sits in a deck of copy, one JSON line per text.

Prints positions and types only, never the matched text, so the output itself can be
shared, logged or attached to a ticket.

    python -m cli.pii scan copy.txt        # one text per line
    python -m cli.pii scan copy.jsonl      # JSON objects with a "text" field
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from cli.common import command_group, fail
from retail.errors import ReelcastError

pii_app = command_group(
    help="Find personal data (emails, phones, cards, IBANs, IPs, ids, names, addresses) in copy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class PiiInputError(ReelcastError):
    """A file the scan cannot read, with the file (and line) in the message."""


@pii_app.callback()
def _group() -> None:
    """Scan copy for personal data."""


@pii_app.command()
def scan(
    file: Annotated[
        Path,
        typer.Argument(
            help="Texts to scan: one per line, or JSONL with a string field `text` "
            "(chosen by the .jsonl extension or a first character `{`).",
            show_default=False,
        ),
    ],
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow",
            help="A term never flagged, e.g. a brand name or the shop's postal address "
            "(repeat the option for more).",
        ),
    ] = None,
) -> None:
    """Print, for every input text in order, {"line": N, "findings": [{type, start, end}]}.

    N is the 1-based line in FILE; offsets are Python string indices into that text.
    A clean text gets an empty list. The matched text is never printed. Exit 0.
    """
    from compliance.pii import AllowList, scan_text

    try:
        texts = list(read_texts(file))
    except PiiInputError as exc:  # also when run as `python -m cli.pii`, without main()
        raise fail(str(exc)) from None
    allowed = AllowList(allow or ())
    out = sys.stdout
    for line, text in texts:
        findings = [f.as_dict() for f in scan_text(text, allow=allowed)]
        out.write(json.dumps({"line": line, "findings": findings}) + "\n")


def read_texts(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, text) from a text-per-line or JSONL file.

    Raises PiiInputError for a missing or unreadable file and for a JSONL line that is
    not an object with a string `text` (blank JSONL lines are skipped). Messages name
    the file and line, never the line's content: it may be personal data.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PiiInputError(f"{path}: no such file") from None
    except OSError as exc:
        raise PiiInputError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PiiInputError(
            f"{path}: not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8"
        ) from None
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line starts no text
    lines = [line.removesuffix("\r") for line in lines]
    is_jsonl = path.suffix.lower() == ".jsonl" or content.lstrip().startswith("{")
    for number, line in enumerate(lines, start=1):
        if not is_jsonl:
            yield number, line
        elif line.strip():
            yield number, _text_field(path, number, line)


def _text_field(path: Path, number: int, line: str) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise PiiInputError(
            f"{path}, line {number}: not valid JSON ({exc.msg} at column {exc.colno})"
        ) from None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise PiiInputError(
            f'{path}, line {number}: expected a JSON object with a string field "text"'
        )
    return record["text"]


if __name__ == "__main__":
    pii_app()
