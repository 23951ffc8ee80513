"""One background scan, in its own process: ``python -m piiport.service.runscan``."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from piiport.service.runjob import die_with_parent

logger = logging.getLogger("piiport.service")


def run(scan_id: str, claim: str, *, config_path: str | None, index_url: str | None) -> int:
    from connectors.errors import PiiportError
    from piiport.api import scan_sources
    from piiport.config import load_config
    from piiport.service.scans import ScanStore
    from piiport.service.store import Store, store_url

    cfg = load_config(config_path, index=index_url)
    store = Store(store_url(cfg.index))
    scans = ScanStore(store)
    scan = scans.get(scan_id)
    if scan is None or scan.claim != claim or scan.status != "running":
        return 3
    specs = [s for s in cfg.sources if not scan.sources or s.name in scan.sources]
    result: dict[str, Any]
    try:
        done = scan_sources(specs, config=cfg)
        summary = done.as_dict()
        result = {"run_id": summary.get("run_id"), "totals": summary.get("totals"), "errors": summary.get("errors")}
        status = "done" if done.ok else "incomplete"
    except PiiportError as exc:
        status, result = "failed", {"error": {"code": type(exc).__name__, "message": exc.message}}
    except Exception as exc:
        logger.error("scan %s failed with %s", scan_id, type(exc).__name__)
        status = "failed"
        result = {
            "error": {"code": "internal", "message": f"the scan failed ({type(exc).__name__}); see the server log"}
        }
    scans.finish(scan_id, claim, status=status, result=result)
    store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m piiport.service.runscan")
    parser.add_argument("--scan", required=True)
    parser.add_argument("--claim", required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--config")
    parser.add_argument("--index")
    args = parser.parse_args(argv)
    die_with_parent(args.parent)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run(args.scan, args.claim, config_path=args.config, index_url=args.index)


if __name__ == "__main__":
    sys.exit(main())
