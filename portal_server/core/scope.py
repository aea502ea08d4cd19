"""One scope check for every feature (DESIGN §1 "Scope is a first-class value").

``require(user, region)`` raises the API's 403 naming the region in Chinese; ``covers`` is the
boolean form; ``filter(user, Model.path_column)`` limits a query to the caller's subtree.
"""
from __future__ import annotations

from .api import ApiError
from .regions import Region, Scope, region_by_code


class OutOfScope(ApiError):
    """403: the region is not inside the caller's scope."""

    def __init__(self, region: Region | str, what: str | None = None):
        code = region if isinstance(region, str) else region.code
        name = None if isinstance(region, str) else region.name
        label = f"{code}（{name}）" if name else code
        thing = f"{what}所在的" if what else ""
        super().__init__(403, "forbidden", f"{thing}区域 {label} 不在您的管辖范围内", region=code)


def _scope_of(who) -> Scope:
    return who if isinstance(who, Scope) else who.scope


def covers(who, region: Region | str | None) -> bool:
    """True when ``region`` (Region or code) lies inside the scope of ``who`` (User or Scope)."""
    if region is None:
        return False
    return _scope_of(who).covers(region)


def require(who, region: Region | str | None, what: str | None = None) -> Region:
    """The region, when inside the scope of ``who``; else 403 naming it (404 if unknown)."""
    r = region_by_code(region) if isinstance(region, str) else region
    if r is None:
        raise ApiError(404, "not_found", f"区域 {region} 不存在")
    if not covers(who, r):
        raise OutOfScope(r, what)
    return r


def filter(who, path_column):  # noqa: A001 - reads as scope.filter(user, Model.path)
    """A SQL condition keeping rows whose region path lies inside the scope of ``who``."""
    return _scope_of(who).region_filter(path_column)
