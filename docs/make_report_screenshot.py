"""Make docs/img/report.png, the README's picture of the HTML report.

Builds the demo in a temporary folder, scans it, changes it as a day of business would
(``piiport.demo_data.change_for_nightly``), scans again, writes the report and has headless
Chromium take a screenshot. Run: ``python docs/make_report_screenshot.py`` (needs /usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG = """index: sqlite:///demo/.piiport/index.db
sources:
  - {name: crm, url: "sqlite:///demo/crm.db"}
  - {name: files, path: demo/files}
retention:
  - {source: crm, container: customers, date_column: created_at, max_age: 3y, basis: "prospects, charter: 3 years"}
  - {source: files, container: newsletter_signups.csv, mtime: true, max_age: 13mo,
     basis: "cookie and consent records, charter: 13 months"}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=HERE / "img" / "report.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--size", default="1100,1900", help="window size, width,height")
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIIPORT_")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "piiport.yaml").write_text(CONFIG, encoding="utf-8")
        env["PIIPORT_CONFIG"] = str(work / "piiport.yaml")

        def piiport(*argv: str) -> None:
            subprocess.run(["piiport", *argv], cwd=work, env=env, check=False, capture_output=True)

        piiport("demo", "--dir", "demo")
        piiport("scan")
        from piiport.demo_data import change_for_nightly

        change_for_nightly(work / "demo")
        piiport("scan")
        piiport("report", "--out", "report.html")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                args.chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={work / 'chromium'}",
                f"--window-size={args.size}",
                f"--screenshot={args.out.resolve()}",
                (work / "report.html").as_uri(),
            ],
            check=True,
            capture_output=True,
        )
    print(args.out)


if __name__ == "__main__":
    main()
