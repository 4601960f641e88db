"""How the benchmarks print what they measured: Markdown tables, as the README quotes them. Imported as a plain
module: a script run as `python benchmarks/<name>.py` has this folder first on its path."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def print_markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
