"""How long a report takes to open: headless Chromium loads each report in a frame of a small page and that page
records the time from its start to the frame's load event (parsing, the inline SVG figures, layout), five times
per report; the median is reported. Browser start-up is not counted.

    python benchmarks/report_open.py docs/studies/fair/report.html runs/demo/report.html

Writes benchmarks/results/report-open-<machine>.json.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import RESULTS, machine, machine_slug  # noqa: E402

PAGE = """<!doctype html><html><head><title>waiting</title><script>const t0 = performance.now();</script></head>
<body><iframe src="{src}" style="width:1280px;height:800px"
onload="var d = this.contentDocument; document.title = 'LOADED ' + (performance.now() - t0).toFixed(1) + ' SVG '
+ (d ? d.querySelectorAll('svg').length : -1)"></iframe></body></html>"""


def open_ms(report: Path, browser: str) -> tuple[float, int]:
    """Milliseconds to the report's load event, and the SVG figures its document holds then (proof it loaded)."""
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "open.html"
        page.write_text(PAGE.format(src=report.resolve().as_uri()))
        out = subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--allow-file-access-from-files",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    found = re.search(r"<title>LOADED ([0-9.]+) SVG (-?[0-9]+)</title>", out)
    if not found or int(found[2]) < 0:
        raise SystemExit(f"{report}: the frame's load event was not seen, or its document could not be read")
    return float(found[1]), int(found[2])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reports", nargs="+", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        raise SystemExit("no Chromium found")
    rows = []
    for report in args.reports:
        runs = [open_ms(report, browser) for _ in range(args.repeat)]
        times = [t for t, _ in runs]
        cells = re.search(r"(\d+) finished cells reported", report.read_text())
        rows.append(
            {
                "report": str(report),
                "bytes": report.stat().st_size,
                "cells": int(cells[1]) if cells else None,
                "svg_figures": runs[0][1],
                "open_ms": [round(t) for t in times],
                "median_ms": round(statistics.median(times)),
            }
        )
        print(f"{report}: {rows[-1]['bytes'] / 1e6:.1f} MB, median {rows[-1]['median_ms']} ms ({rows[-1]['open_ms']})")
    out = {"machine": machine(), "command": "python benchmarks/report_open.py " + " ".join(sys.argv[1:]), "rows": rows}
    path = RESULTS / f"report-open-{machine_slug(out['machine'])}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
