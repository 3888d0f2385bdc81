"""Columnar containers passed between stages: numpy arrays, never a dict per DiaSource."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BANDS = "ugrizy"
BAND_CODE = {band: code for code, band in enumerate(BANDS)}
UNKNOWN_BAND = -1
SOURCE_COLUMNS = ("source_id", "mjd", "band", "flux", "flux_err", "flags")


@dataclass
class Sources:
    """Ragged light-curve rows: the rows of alert i are [offsets[i], offsets[i+1])."""

    offsets: np.ndarray  # int64 [n + 1]
    source_id: np.ndarray  # int64 [m]
    mjd: np.ndarray  # float64 [m], midpointMjdTai
    band: np.ndarray  # int8 [m], index into BANDS or UNKNOWN_BAND
    flux: np.ndarray  # float64 [m], psfFlux in nJy; NaN when null
    flux_err: np.ndarray  # float64 [m], psfFluxErr; NaN when null
    flags: np.ndarray  # int64 [m], packed flag bits (decode.fields.FLAG_FIELDS); 0 for format-2 stored records

    @property
    def n_alerts(self) -> int:
        return len(self.offsets) - 1

    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def empty(cls, n_alerts: int) -> Sources:
        return cls(
            offsets=np.zeros(n_alerts + 1, np.int64),
            source_id=np.zeros(0, np.int64),
            mjd=np.zeros(0, np.float64),
            band=np.zeros(0, np.int8),
            flux=np.zeros(0, np.float64),
            flux_err=np.zeros(0, np.float64),
            flags=np.zeros(0, np.int64),
        )

    @classmethod
    def from_arrays(cls, counts: np.ndarray, **columns: np.ndarray) -> Sources:
        offsets = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        return cls(offsets=offsets, **columns)

    def rows(self, i: int) -> slice:
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    def without(self, alerts: np.ndarray) -> Sources:
        """A copy where the alerts in the boolean mask `alerts` have no rows."""
        return self.kept(np.repeat(~alerts, self.counts()))

    def kept(self, rows: np.ndarray) -> Sources:
        """A copy with only the rows in the boolean mask `rows`, in their order."""
        alert_of_row = np.repeat(np.arange(self.n_alerts), self.counts())
        counts = np.bincount(alert_of_row[rows], minlength=self.n_alerts)
        return Sources.from_arrays(counts, **{name: getattr(self, name)[rows] for name in SOURCE_COLUMNS})


@dataclass
class DecodedBatch:
    """What the decoder extracts from a batch of framed alerts.

    Alerts that failed to decode have ok[i] == False, a reason code in error_reason[i]
    and zero rows in `sources`; every other column is undefined for them.
    """

    ok: np.ndarray  # bool [n]
    error_reason: list[str | None]
    error_detail: list[str | None]
    schema_id: np.ndarray  # int32 [n]
    alert_id: np.ndarray  # int64 [n]: diaSourceId of the triggering DiaSource
    object_id: np.ndarray  # int64 [n]: diaObjectId, valid where has_object
    has_object: np.ndarray  # bool [n]
    ra: np.ndarray  # float64 [n], triggering DiaSource
    dec: np.ndarray  # float64 [n]
    mjd: np.ndarray  # float64 [n]
    sources: Sources  # diaSource first, then prvDiaSources
    forced: Sources | None  # prvDiaForcedSources, when requested
    # Set by quality.screen, which also drops unusable rows (None: not screened yet).
    epoch_ok: np.ndarray | None = None  # bool [n]: the alert's epoch is valid (it has a window)
    trigger_kept: np.ndarray | None = None  # bool [n]: sources' first row is the triggering diaSource

    @property
    def n(self) -> int:
        return len(self.ok)

    def reject(self, alerts: np.ndarray, reason: str, detail: str) -> None:
        """Mark the alerts in the boolean mask as failed (dead letters), with this reason even if
        they had failed already, and drop their rows."""
        for i in np.flatnonzero(alerts).tolist():
            self.error_reason[i] = reason
            self.error_detail[i] = detail
        self.ok &= ~alerts
        if self.epoch_ok is not None:
            self.epoch_ok &= ~alerts
            self.trigger_kept &= ~alerts
        self.sources = self.sources.without(alerts)
        if self.forced is not None:
            self.forced = self.forced.without(alerts)
