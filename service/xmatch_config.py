"""Per-catalog settings of the HATS catalogs read in place (`xmatch_hats`), validated at start.

Kept apart from alertfeat.xmatch so that reading the configuration imports no numba.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class HatsCatalogSettings(BaseModel):
    """One HATS catalog: where it is, which columns mean what, and how much of it to cache."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="the HATS catalog (or collection) directory, e.g. on a read-only volume")
    id: str = Field(description="integer column that becomes sourceId")
    mag: str | None = Field(None, description="magnitude column (summary and nearBrightStar)")
    pmra: str | None = Field(None, description="proper motion in RA (times cos dec), mas/yr")
    pmdec: str | None = Field(None, description="proper motion in Dec, mas/yr")
    epoch: float = Field(2016.0, ge=1900, le=2100, description="Julian year of the positions")
    pm_max_mas_yr: float | None = Field(None, gt=0, le=20_000,
                                        description="fastest star; default 10,500 (Barnard's star)")
    cache_mb: float = Field(150.0, gt=0, description="bound of the partitions held in memory")
    columns: list[str] = Field(default_factory=list,
                               description="numeric columns carried into the xmatch topic for each match")

    @model_validator(mode="after")
    def _both_motions(self) -> HatsCatalogSettings:
        if (self.pmra is None) != (self.pmdec is None):
            raise ValueError("give both pmra and pmdec, or neither")
        return self
