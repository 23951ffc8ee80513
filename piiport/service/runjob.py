"""One export job, in its own process: ``python -m piiport.service.runjob``.

The server starts one of these per claimed job, so a crash in an export (a driver fault, memory)
ends this process, not the server. The export goes through :func:`piiport.api.export_subject`,
the function behind ``piiport export``, and always writes over what an interrupted attempt may
have left, which is safe because a package is moved into place only once complete.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger("piiport.service")


def summary(manifest: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    """What the status document shows of a manifest: counts, errors, completeness, review."""
    totals = manifest.get("totals", {})
    out: dict[str, Any] = {
        "found": manifest.get("subject", {}).get("found"),
        "files": totals.get("files", 0),
        "records": totals.get("records", 0),
        "errors": errors,
        "third_party_mentions": len(manifest.get("third_party_mentions", [])),
    }
    if "complete" in manifest:
        out["complete"] = manifest["complete"]
    if "review" in manifest:
        review = manifest["review"]
        out["review"] = len(review) if isinstance(review, (list, dict)) else review
    return out


def _clear_leftovers(out: Path, request_id: str) -> None:
    """Staging folders of an attempt that was killed before it could move its package into place."""
    if out.is_dir():
        for stale in out.glob(f".{request_id}.*"):
            shutil.rmtree(stale, ignore_errors=True)


def run(job_id: str, claim: str, *, config_path: str | None, index_url: str | None, packages: str) -> int:
    from connectors.errors import PiiportError
    from discover.errors import AmbiguousSubjectError
    from discover.index import Index
    from discover.sealing import KeySealer
    from export.errors import ExportError
    from piiport.api import export_subject
    from piiport.config import load_config
    from piiport.service.jobs import JobStore
    from piiport.service.store import Store, store_url

    cfg = load_config(config_path, index=index_url)
    store = Store(store_url(cfg.index))
    jobs = JobStore(store)
    job = jobs.get(job_id)
    if job is None or job.claim != claim or job.status != "running" or job.sealed is None:
        logger.warning("job %s is no longer ours; not running it", job_id)
        return 3
    to_s3 = packages.startswith("s3://")
    if not to_s3:
        Path(packages).mkdir(mode=0o700, parents=True, exist_ok=True)
        _clear_leftovers(Path(packages), job.request_id)
    result: dict[str, Any]
    package = None
    try:
        with Index(cfg.index, create=False) as idx:
            ids = json.loads(KeySealer(idx.hasher.key).open(job.sealed))
            exported = export_subject(
                emails=ids.get("email", []),
                phones=ids.get("phone", []),
                ips=ids.get("ip", []),
                names=ids.get("name", []),
                config=cfg,
                index=idx,
                fmt=job.params["format"],
                out=packages,
                as_zip=True,
                request_id=job.request_id,
                overwrite=True,
                actor=job.actor,
            )
        status = "done" if exported.ok else "incomplete"
        package = exported.package
        result = {
            "summary": summary(exported.manifest, exported.errors)
            | {"complete": exported.complete, "review": exported.review},
            "package_sha256": exported.sha256,
            "download_url": exported.download_url,
        }
    except AmbiguousSubjectError as exc:
        status = "refused"
        result = {"error": {"code": exc.reason, "message": exc.message, "subjects_matched": exc.matched}}
    except ExportError as exc:
        status = "failed"
        result = {"error": {"code": exc.reason or "export", "message": exc.message}}
    except PiiportError as exc:
        status, result = "failed", {"error": {"code": type(exc).__name__, "message": exc.message}}
    except Exception as exc:
        # Messages of unexpected errors may quote data; the log gets the type only.
        logger.error("job %s: export failed with %s", job_id, type(exc).__name__)
        status = "failed"
        result = {
            "error": {"code": "internal", "message": f"the export failed ({type(exc).__name__}); see the server log"}
        }
    callback = bool(job.params.get("callback_url"))
    if not jobs.finish(job_id, claim, status=status, result=result, package=package, callback=callback):
        logger.warning("job %s was taken over while it ran; its outcome is left to the new owner", job_id)
    store.close()
    return 0


def die_with_parent(parent: int) -> None:
    """A server killed with SIGKILL takes its exports with it (Linux), so a restarted server can
    run them again without two writers of one package."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m piiport.service.runjob")
    parser.add_argument("--job", required=True)
    parser.add_argument("--claim", required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--packages", required=True)
    parser.add_argument("--config")
    parser.add_argument("--index")
    args = parser.parse_args(argv)
    die_with_parent(args.parent)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run(args.job, args.claim, config_path=args.config, index_url=args.index, packages=args.packages)


if __name__ == "__main__":
    sys.exit(main())
