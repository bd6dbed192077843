"""md2html: render a Markdown file to a standalone HTML page (an example workload for ``batchpipe map``).

Usage: ``python3 md2html.pyz INPUT.md OUTPUT.html [--title TITLE]``. The page's footer names the Batch task that
made it (``AZ_BATCH_TASK_ID``) and the value of ``MD2HTML_FOOTER`` when set. Its one dependency, markdown-it-py
(and mdurl), travels inside the zipapp (see ``build.py``).
"""

from __future__ import annotations

import argparse
import html
import os
import sys

from markdown_it import MarkdownIt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="md2html", description=__doc__)
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--title", default="")
    args = parser.parse_args(argv)
    with open(args.source, encoding="utf-8") as handle:
        body = MarkdownIt("commonmark").render(handle.read())
    title = html.escape(args.title or os.path.basename(args.source))
    footer = " ".join(filter(None, [os.environ.get("AZ_BATCH_TASK_ID", ""), os.environ.get("MD2HTML_FOOTER", "")]))
    page = (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{title}</title></head>\n"
        f"<body>\n{body}<footer>{html.escape(footer)}</footer>\n</body></html>\n"
    )
    with open(args.target, "w", encoding="utf-8") as handle:
        handle.write(page)
    print(f"md2html: wrote {args.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
