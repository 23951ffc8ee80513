"""What changed between two scan runs.

When a run finishes, the index keeps a snapshot of the inventory as it stands (``run_snapshots``):
per container its kind, record count and status, per field and entity type the records with a
hit, non-null values and prevalence. Counts and names only, never an identifier or an example,
compressed: a few bytes per field. Two snapshots give a :class:`RunDiff`.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from connectors.errors import ConfigError, PiiportError

if TYPE_CHECKING:
    from discover.index import Index

SNAPSHOT_VERSION = 1
#: Runs that finished (with or without container errors) are the ones compared by default.
FINISHED = ("ok", "errors")


@dataclass(frozen=True)
class ContainerState:
    source: str
    container: str
    kind: str
    records: int
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass(frozen=True)
class FieldCount:
    source: str
    container: str
    field: str
    entity_type: str
    origin: str
    records: int
    non_null: int
    prevalence: float


@dataclass(frozen=True)
class Snapshot:
    """The inventory as it stood when a run finished."""

    run_id: int
    started_at: str
    status: str
    containers: tuple[ContainerState, ...]
    fields: tuple[FieldCount, ...]

    def records_with_pii(self) -> int:
        """Per container the most records with a hit in one field, summed: a lower bound of the
        records holding personal data (the index keeps no per-record count in the snapshot)."""
        best: dict[tuple[str, str], int] = {}
        for f in self.fields:
            key = (f.source, f.container)
            best[key] = max(best.get(key, 0), f.records)
        return sum(best.values())

    def pii_fields(self) -> dict[tuple[str, str, str], set[str]]:
        out: dict[tuple[str, str, str], set[str]] = {}
        for f in self.fields:
            if f.records > 0:
                out.setdefault((f.source, f.container, f.field), set()).add(f.entity_type)
        return out


def encode_snapshot(containers: Sequence[dict[str, Any]], fields: Sequence[dict[str, Any]]) -> bytes:
    data = {
        "v": SNAPSHOT_VERSION,
        "containers": [[c["source"], c["name"], c["kind"], c["records"] or 0, c["error"]] for c in containers],
        "fields": [
            [
                f["source"],
                f["container"],
                f["field"],
                f["entity_type"],
                f["origin"],
                f["records"],
                f["non_null"],
                f["prevalence"],
            ]
            for f in fields
        ],
    }
    return zlib.compress(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8"), 6)


def decode_snapshot(raw: bytes, *, run_id: int, started_at: str, status: str) -> Snapshot:
    data = json.loads(zlib.decompress(raw).decode("utf-8"))
    return Snapshot(
        run_id=run_id,
        started_at=started_at,
        status=status,
        containers=tuple(ContainerState(*row) for row in data["containers"]),
        fields=tuple(FieldCount(*row) for row in data["fields"]),
    )


def snapshots(index: Index) -> list[Snapshot]:
    """Every run that has a snapshot, oldest first."""
    out = []
    for run in index.runs():
        raw = index.snapshot_data(run["id"])
        if raw is not None:
            out.append(decode_snapshot(raw, run_id=run["id"], started_at=run["started_at"], status=run["status"]))
    return out


def snapshot(index: Index, run_id: int) -> Snapshot:
    runs = {r["id"]: r for r in index.runs()}
    run = runs.get(run_id)
    if run is None:
        known = f"runs {min(runs)} to {max(runs)}" if runs else "no runs"
        raise ConfigError(f"there is no scan run {run_id} in the index (it has {known})", setting="run")
    raw = index.snapshot_data(run_id)
    if raw is None:
        raise ConfigError(
            f"scan run {run_id} has no inventory snapshot (it is still running, or an earlier piiport scanned it); "
            "compare runs made by this version",
            setting="run",
        )
    return decode_snapshot(raw, run_id=run_id, started_at=run["started_at"], status=run["status"])


@dataclass(frozen=True)
class FieldRef:
    source: str
    container: str
    field: str
    entity_types: tuple[str, ...]


@dataclass(frozen=True)
class EntityTypeChange:
    source: str
    container: str
    field: str
    entity_type: str


@dataclass(frozen=True)
class PrevalenceChange:
    source: str
    container: str
    field: str
    entity_type: str
    before: float
    after: float

    @property
    def delta(self) -> float:
        return round(self.after - self.before, 4)


@dataclass(frozen=True)
class ContainerChange:
    source: str
    container: str
    kind: str
    error: str | None = None


@dataclass(frozen=True)
class RunDiff:
    """What changed in the inventory from run ``run_a`` to run ``run_b``."""

    run_a: int
    run_b: int
    threshold: float
    new_containers: list[ContainerChange] = field(default_factory=list)
    removed_containers: list[ContainerChange] = field(default_factory=list)
    new_fields: list[FieldRef] = field(default_factory=list)
    removed_fields: list[FieldRef] = field(default_factory=list)
    new_entity_types: list[EntityTypeChange] = field(default_factory=list)
    prevalence_changes: list[PrevalenceChange] = field(default_factory=list)
    began_failing: list[ContainerChange] = field(default_factory=list)
    stopped_failing: list[ContainerChange] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.new_containers,
                self.removed_containers,
                self.new_fields,
                self.removed_fields,
                self.new_entity_types,
                self.prevalence_changes,
                self.began_failing,
                self.stopped_failing,
            )
        )

    @property
    def new_pii(self) -> bool:
        """Whether run B has a personal-data field that run A did not have."""
        return bool(self.new_fields)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for change in out["prevalence_changes"]:
            change["delta"] = round(change["after"] - change["before"], 4)
        for f in out["new_fields"] + out["removed_fields"]:
            f["entity_types"] = list(f["entity_types"])
        return out


def compare(a: Snapshot, b: Snapshot, *, threshold: float = 0.1) -> RunDiff:
    """The changes from snapshot ``a`` to snapshot ``b``."""
    if not 0 <= threshold <= 1:
        raise ConfigError(f"threshold {threshold} must be between 0 and 1 (a share of values)", setting="threshold")
    ca = {(c.source, c.container): c for c in a.containers}
    cb = {(c.source, c.container): c for c in b.containers}
    fa, fb = a.pii_fields(), b.pii_fields()
    pa = {(f.source, f.container, f.field, f.entity_type): f.prevalence for f in a.fields if f.records > 0}
    pb = {(f.source, f.container, f.field, f.entity_type): f.prevalence for f in b.fields if f.records > 0}

    def change(c: ContainerState) -> ContainerChange:
        return ContainerChange(c.source, c.container, c.kind, c.error)

    prevalence = []
    for key in sorted(pa.keys() & pb.keys()):
        if abs(pb[key] - pa[key]) > threshold + 1e-9:
            prevalence.append(PrevalenceChange(*key, before=pa[key], after=pb[key]))
    return RunDiff(
        run_a=a.run_id,
        run_b=b.run_id,
        threshold=threshold,
        new_containers=[change(cb[k]) for k in sorted(cb.keys() - ca.keys())],
        removed_containers=[change(ca[k]) for k in sorted(ca.keys() - cb.keys())],
        new_fields=[FieldRef(*k, entity_types=tuple(sorted(fb[k]))) for k in sorted(fb.keys() - fa.keys())],
        removed_fields=[FieldRef(*k, entity_types=tuple(sorted(fa[k]))) for k in sorted(fa.keys() - fb.keys())],
        new_entity_types=[
            EntityTypeChange(*k, entity_type=t) for k in sorted(fa.keys() & fb.keys()) for t in sorted(fb[k] - fa[k])
        ],
        prevalence_changes=prevalence,
        began_failing=[change(cb[k]) for k in sorted(ca.keys() & cb.keys()) if cb[k].failed and not ca[k].failed]
        + [change(cb[k]) for k in sorted(cb.keys() - ca.keys()) if cb[k].failed],
        stopped_failing=[change(cb[k]) for k in sorted(ca.keys() & cb.keys()) if ca[k].failed and not cb[k].failed],
    )


def diff_runs(index: Index, run_a: int | None = None, run_b: int | None = None, *, threshold: float = 0.1) -> RunDiff:
    """Compare two runs; by default the last two finished runs (with ``run_a`` alone: it and the last)."""
    finished = [s.run_id for s in snapshots(index) if s.status in FINISHED]
    if run_b is None:
        if not finished:
            raise PiiportError("the index has no finished scan run to compare; run `piiport scan` twice")
        run_b = finished[-1]
    if run_a is None:
        earlier = [r for r in finished if r < run_b]
        if not earlier:
            raise PiiportError(
                f"the index has no finished scan run before run {run_b} to compare it with; "
                "scan again to see what changed"
            )
        run_a = earlier[-1]
    return compare(snapshot(index, run_a), snapshot(index, run_b), threshold=threshold)


def previous_diff(index: Index, run_id: int) -> RunDiff | None:
    """The changes a run made against the last finished run before it; None for a first run."""
    finished = [s.run_id for s in snapshots(index) if s.status in FINISHED and s.run_id < run_id]
    if not finished:
        return None
    return compare(snapshot(index, finished[-1]), snapshot(index, run_id))


def _lines(d: RunDiff) -> list[tuple[str, str]]:
    """(section, line) pairs, in the order a reader wants them."""
    out: list[tuple[str, str]] = []
    for c in d.new_containers:
        out.append(("New containers", f"{c.source}/{c.container} ({c.kind})"))
    for c in d.removed_containers:
        out.append(("Removed containers", f"{c.source}/{c.container} ({c.kind})"))
    for f in d.new_fields:
        out.append(("New personal-data fields", f"{f.source}/{f.container}.{f.field}: {', '.join(f.entity_types)}"))
    for f in d.removed_fields:
        out.append(("Removed personal-data fields", f"{f.source}/{f.container}.{f.field}: {', '.join(f.entity_types)}"))
    for e in d.new_entity_types:
        out.append(("Entity types new to a field", f"{e.source}/{e.container}.{e.field}: {e.entity_type}"))
    for p in d.prevalence_changes:
        out.append(
            (
                f"Prevalence changes beyond {d.threshold:g}",
                f"{p.source}/{p.container}.{p.field} {p.entity_type}: {p.before:.2f} -> {p.after:.2f} ({p.delta:+.2f})",
            )
        )
    for c in d.began_failing:
        out.append(("Containers that began failing", f"{c.source}/{c.container}: {c.error}"))
    for c in d.stopped_failing:
        out.append(("Containers that stopped failing", f"{c.source}/{c.container}"))
    return out


def render(d: RunDiff, fmt: str) -> str:
    """``table`` (plain text), ``json`` or ``md``."""
    if fmt == "json":
        return json.dumps(d.as_dict(), indent=2, ensure_ascii=False) + "\n"
    title = f"Changes from run {d.run_a} to run {d.run_b}"
    lines = _lines(d)
    if fmt == "md":
        out = [f"## {title}", ""]
        if not lines:
            return "\n".join([*out, "No changes.", ""])
        section = None
        for name, line in lines:
            if name != section:
                if section is not None:
                    out.append("")
                out += [f"### {name}", ""]
                section = name
            out.append("- " + line.replace("\\", "\\\\").replace("*", "\\*").replace("_", "\\_"))
        return "\n".join(out) + "\n"
    out = [title + ":"]
    if not lines:
        return out[0][:-1] + ": no changes.\n"
    section = None
    for name, line in lines:
        if name != section:
            out.append(f"{name}:")
            section = name
        out.append(f"  {line}")
    return "\n".join(out) + "\n"


__all__ = [
    "ContainerChange",
    "ContainerState",
    "EntityTypeChange",
    "FieldCount",
    "FieldRef",
    "PrevalenceChange",
    "RunDiff",
    "Snapshot",
    "compare",
    "decode_snapshot",
    "diff_runs",
    "encode_snapshot",
    "previous_diff",
    "render",
    "snapshot",
    "snapshots",
]
