"""Which input columns hold what: Rubin's DiaSource names by default, remappable (DP1, ForcedSource...)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ..errors import AlertfeatError


class BatchInputError(AlertfeatError):
    """The batch input cannot be used (missing path, not HATS, missing columns, bad option)."""


@dataclass(frozen=True)
class ColumnMap:
    """Input column names. Object-level: object_id, ra, dec; per source (inside `nested`):
    source_id, mjd, band, flux, flux_err."""

    nested: str = "diaSource"
    object_id: str = "diaObjectId"
    ra: str = "ra"
    dec: str = "dec"
    source_id: str = "diaSourceId"
    mjd: str = "midpointMjdTai"
    band: str = "band"
    flux: str = "psfFlux"
    flux_err: str = "psfFluxErr"

    @classmethod
    def parse(cls, text: str | None, nested: str | None = None) -> ColumnMap:
        """From 'RUBIN=THEIRS,...' pairs, e.g. 'psfFlux=scienceFlux,psfFluxErr=scienceFluxErr'.
        Keys are Rubin's names (diaObjectId, midpointMjdTai, ...) or our field names."""
        default = cls() if nested is None else cls(nested=nested)
        if not text:
            return default
        by_name = {getattr(default, f.name): f.name for f in fields(cls)} | {f.name: f.name for f in fields(cls)}
        changes = {}
        for pair in text.split(","):
            key, sep, value = (s.strip() for s in pair.partition("="))
            if not sep or not value or key not in by_name:
                known = ", ".join(getattr(default, f.name) for f in fields(cls) if f.name != "nested")
                raise BatchInputError(f"--columns: {pair!r} is not NAME=COLUMN with NAME one of {known}")
            changes[by_name[key]] = value
        return replace(default, **changes)

    @property
    def source_fields(self) -> tuple[str, ...]:
        return (self.source_id, self.mjd, self.band, self.flux, self.flux_err)
