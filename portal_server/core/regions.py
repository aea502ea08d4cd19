"""Regions (city → town → village) with national-style 12-digit codes and materialised paths.

"Within my scope" is one indexed prefix query on ``Region.path``.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .db import Base, session

LEVELS = ("city", "town", "village")


class Region(Base):
    __tablename__ = "regions"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: 12-digit division code, e.g. 990101001001.
    code: Mapped[str] = mapped_column(String(12), unique=True, index=True)
    #: Display name in Chinese.
    name: Mapped[str] = mapped_column(String(64))
    #: city, town or village.
    level: Mapped[str] = mapped_column(String(8))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    #: Codes from the root down to this region, each followed by "/": prefix queries give subtrees.
    path: Mapped[str] = mapped_column(String(255), index=True)

    parent: Mapped["Region | None"] = relationship(remote_side="Region.id", back_populates="children")
    children: Mapped[list["Region"]] = relationship(back_populates="parent", order_by="Region.code")

    def chain(self) -> list["Region"]:
        """This region and its ancestors, root first."""
        codes = [c for c in self.path.split("/") if c]
        rows = {r.code: r for r in session.scalars(select(Region).where(Region.code.in_(codes)))}
        return [rows[c] for c in codes if c in rows]

    def chain_codes(self) -> list[str]:
        return [c for c in self.path.split("/") if c]

    def __repr__(self) -> str:
        return f"<Region {self.code} {self.name}>"


@dataclass(frozen=True)
class Scope:
    """A subtree of regions: everything whose path starts with ``path``."""

    code: str
    path: str
    level: str

    @classmethod
    def of(cls, region: Region) -> "Scope":
        return cls(region.code, region.path, region.level)

    def covers(self, region: Region | "Scope" | str) -> bool:
        """True when ``region`` (a Region, Scope or code) lies inside this scope."""
        if isinstance(region, str):
            r = region_by_code(region)
            if r is None:
                return False
            region = r
        return region.path.startswith(self.path)

    def region_filter(self, path_column):
        """A SQL condition restricting ``path_column`` to this subtree."""
        return path_column.startswith(self.path, autoescape=True)


def region_by_code(code: str) -> Region | None:
    """The region with ``code``, or None."""
    return session.scalar(select(Region).where(Region.code == code))


def make_path(parent: Region | None, code: str) -> str:
    return (parent.path if parent else "") + code + "/"


def villages_under(region: Region) -> list[Region]:
    """Every village in the subtree of ``region`` (itself if it is one)."""
    return list(session.scalars(select(Region).where(Region.level == "village",
                                                     Region.path.startswith(region.path))
                                .order_by(Region.code)))


def region_to_dict(region: Region, with_children: bool = True) -> dict:
    """The API shape of INTERFACES §4."""
    out = {"code": region.code, "name": region.name, "level": region.level,
           "parent": region.parent.code if region.parent else None}
    if with_children:
        out["children"] = [{"code": c.code, "name": c.name, "level": c.level} for c in region.children]
    return out
