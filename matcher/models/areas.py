"""Areas (district, township/street, village/community) and practice stations."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import db
from ._types import AreaLevel, str_enum


class Area(db.Model):
    """One node of the three-level area tree; `path` is the materialized id path ("/1/4/37/")."""

    __tablename__ = "areas"

    id: Mapped[int] = mapped_column(primary_key=True)
    level: Mapped[AreaLevel] = mapped_column(str_enum(AreaLevel, "area_level"))
    name: Mapped[str] = mapped_column(String(80))
    code: Mapped[str] = mapped_column(String(32), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    path: Mapped[str] = mapped_column(String(120), index=True, default="")
    lat: Mapped[float]
    lon: Mapped[float]
    # Radius (km) around the centre that still counts as inside the area; used to
    # reject locations that are plainly outside the district.
    radius_km: Mapped[float] = mapped_column(default=5.0)
    # A township or district that reviews its communities' demands (审单) before they are
    # dispatched; communities inherit it from any area above them (`matcher.demands.reviews_demands`).
    review_demands: Mapped[bool] = mapped_column(default=False, server_default=false())

    parent: Mapped[Area | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Area]] = relationship(back_populates="parent", order_by="Area.name")
    stations: Mapped[list[Station]] = relationship(back_populates="area", order_by="Station.name")

    __table_args__ = (
        CheckConstraint("lat BETWEEN -90 AND 90", name="lat_range"),
        CheckConstraint("lon BETWEEN -180 AND 180", name="lon_range"),
    )

    def contains(self, other: Area) -> bool:
        """True when `other` is this area or lies below it."""
        return other.path.startswith(self.path)

    def __repr__(self) -> str:
        return f"<Area {self.level} {self.name}>"


class Station(db.Model):
    """A practice station (新时代文明实践站) or other venue: where group services happen."""

    __tablename__ = "stations"

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    address: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float]
    lon: Mapped[float]
    capacity: Mapped[int] = mapped_column(default=30)

    area: Mapped[Area] = relationship(back_populates="stations")
