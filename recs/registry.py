"""The model registry: trained models in the workspace, with their data, params and metrics.

A model lives in `<root>/<version>/`: the fitted model file(s) written by the model
itself, and `model.json` with the version, the hash of the data snapshot it was trained
on, its training parameters, its offline metrics and its approval. A model is used by
campaigns only once approved: automatically when its metrics pass the gate against the
approved model before it, or by an operator (`reelcast recs approve VERSION`).

With a shared `ModelStore` (recs/store.py) the store is the truth and `<root>` is this
machine's cache: a model is made in `<root>` and then published to the store, records
and approvals are read from and written to the store, and `path(version)` fetches a
model trained on another machine into `<root>` before it is loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from recs.errors import RecsError
from recs.store import META, ModelStore


@dataclass(frozen=True)
class Gate:
    """When a new model may replace the approved one without a human."""

    metric: str = "ndcg@10"
    #: the new model may be at most this much worse, relatively (0.02 = 2 %)
    max_relative_drop: float = 0.02

    def check(
        self, candidate: Mapping[str, float], approved: Mapping[str, float] | None
    ) -> tuple[bool, str]:
        """(passes, why) for a candidate's metrics against the approved model's."""
        if self.metric not in candidate:
            return False, f"the candidate has no {self.metric} to compare"
        new = float(candidate[self.metric])
        if approved is None or self.metric not in approved:
            floor = candidate.get(f"baseline_{self.metric}")
            if floor is not None and new <= float(floor):
                return False, f"{self.metric} {new:.4f} does not beat popularity ({floor:.4f})"
            return True, f"first model; {self.metric} {new:.4f}"
        old = float(approved[self.metric])
        limit = old * (1 - self.max_relative_drop)
        if new >= limit:
            return True, f"{self.metric} {new:.4f} vs approved {old:.4f} (limit {limit:.4f})"
        return False, f"{self.metric} {new:.4f} is below {limit:.4f} (approved {old:.4f} - " + (
            f"{self.max_relative_drop:.0%})"
        )


@dataclass(frozen=True)
class ModelRecord:
    """What the registry knows about one trained model."""

    version: str
    created_at: str
    data_hash: str
    params: dict[str, object]
    metrics: dict[str, float]
    approved: bool = False
    approved_at: str | None = None
    approved_by: str | None = None
    approval_note: str = ""
    extra: dict[str, object] = field(default_factory=dict)


class Registry:
    """Models under one folder of the workspace; with a `store` (a ModelStore, or a URL
    fsspec knows), models shared through it and the folder is this machine's cache."""

    def __init__(self, root: Path, store: ModelStore | str | None = None) -> None:
        self.root = Path(root)
        self.store = ModelStore(store) if isinstance(store, str) else store

    @property
    def where(self) -> str:
        """Where the records are kept: the store's URL, or the local folder."""
        return self.store.url if self.store is not None else str(self.root)

    def path(self, version: str) -> Path:
        """The local folder of one model version (fetched from the store first when only
        the store has it)."""
        local = self._local(version)
        if self.store is None or (local / META).is_file():
            return local
        if not self.store.fetch(version, local):
            raise RecsError(f"no model {version!r} in {self.store.url}")
        return local

    def _local(self, version: str) -> Path:
        if not version or "/" in version or version.startswith("."):
            raise RecsError(f"not a model version: {version!r}")
        return self.root / version

    def register(
        self,
        version: str,
        save: Callable[[Path], None],
        *,
        data_hash: str,
        params: Mapping[str, object],
        metrics: Mapping[str, float],
        gate: Gate | None = None,
    ) -> ModelRecord:
        """Store a model (written by `save(folder)`) and approve it if it passes `gate`.

        Registering a version that already exists changes nothing and returns its record:
        the same data and parameters give the same version.
        """
        existing = self.get(version)
        if existing is not None:
            return existing
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=self.root))
        try:
            save(staging)
            record = ModelRecord(
                version=version,
                created_at=datetime.now(UTC).isoformat(),
                data_hash=data_hash,
                params=dict(params),
                metrics={k: float(v) for k, v in metrics.items()},
            )
            if gate is not None:
                approved = self.approved()
                ok, why = gate.check(record.metrics, approved.metrics if approved else None)
                record = ModelRecord(
                    **{
                        **asdict(record),
                        "approved": ok,
                        "approved_at": record.created_at if ok else None,
                        "approved_by": "gate" if ok else None,
                        "approval_note": why,
                    }
                )
            _write_json(staging / META, asdict(record))
            target = self._local(version)
            if self.store is not None and target.exists():
                # A cached copy the store does not have (its publishing failed): replace it.
                shutil.rmtree(target)
            os.replace(staging, target)  # atomic: a model is whole or absent
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if self.store is not None:
            self.store.publish(version, target)  # model.json last: listed once complete
        return record

    def get(self, version: str) -> ModelRecord | None:
        """The record of one version, or None."""
        meta = self._local(version) / META  # also checks the version's name
        if self.store is not None:
            data = self.store.read_meta(version)
            return None if data is None else _record(data)
        if not meta.is_file():
            return None
        return ModelRecord(**json.loads(meta.read_text()))

    def all(self) -> list[ModelRecord]:
        """Every registered model, oldest first."""
        if self.store is not None:
            records = [_record(data) for data in self.store.all_meta()]
        elif not self.root.is_dir():
            return []
        else:
            records = [
                ModelRecord(**json.loads((d / META).read_text()))
                for d in self.root.iterdir()
                if d.is_dir() and not d.name.startswith(".") and (d / META).is_file()
            ]
        return sorted(records, key=lambda r: (r.created_at, r.version))

    def approved(self) -> ModelRecord | None:
        """The newest approved model, which campaigns use; None if there is none."""
        approved = [r for r in self.all() if r.approved]
        return (
            max(approved, key=lambda r: (r.approved_at or "", r.created_at)) if approved else None
        )

    def approve(self, version: str, *, by: str, note: str = "") -> ModelRecord:
        """Approve a model by hand; it becomes the one campaigns use."""
        record = self.get(version)
        if record is None:
            known = ", ".join(r.version for r in self.all()) or "none"
            raise RecsError(f"no model {version!r} in {self.where} (known: {known})")
        updated = ModelRecord(
            **{
                **asdict(record),
                "approved": True,
                "approved_at": datetime.now(UTC).isoformat(),
                "approved_by": by,
                "approval_note": note or "approved by hand",
            }
        )
        if self.store is not None:
            self.store.write_meta(version, _dump(asdict(updated)).encode())
        else:
            _write_json(self.path(version) / META, asdict(updated))
        return updated


def _record(data: bytes) -> ModelRecord:
    return ModelRecord(**json.loads(data))


def _dump(data: object) -> str:
    return json.dumps(data, indent=2, sort_keys=True)


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(_dump(data))
    os.replace(tmp, path)
