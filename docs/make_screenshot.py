"""Render the demo package's index.html in headless Chromium to docs/img/package-index.png (for the README).

    python docs/make_screenshot.py [--lang fr] [--out docs/img/package-index.png]

Runs the demo in a temporary folder (nothing is written into the checkout but the PNG) and
uses the tests' browser set-up (tests/browser.py: Debian chromium + chromedriver, headless).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", choices=["en", "fr"], default="en")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "package-index.png")
    parser.add_argument("--height", type=int, default=1400, help="Height of the shot in pixels (the page's top).")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    from browser import chromium, missing

    if missing():
        sys.exit(f"cannot take the screenshot: {missing()}")
    from piiport.api import run_demo

    with tempfile.TemporaryDirectory(prefix="piiport-shot-") as tmp:
        result = run_demo(Path(tmp) / "demo", lang=args.lang)
        assert result.export is not None
        page = Path(result.export.package) / "index.html"
        with chromium(width=1100, height=args.height) as driver:
            driver.get(page.as_uri())
            args.out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.out))
    print(args.out)


if __name__ == "__main__":
    main()
