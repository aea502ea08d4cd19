"""The eight sections of the home screen (INTERFACES §6), in their order on screen."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    key: str        #: the ``data-section`` hook
    name: str       #: what residents read on the tile
    glyph: str      #: one large character on the tile (no icon files: nothing to download)
    colour: str     #: tile background (white text on it has ≥ 4.5:1 contrast)
    blurb: str      #: one line under the name


SECTIONS: tuple[Section, ...] = (
    Section("party", "社区党建", "党", "#a61b1b", "学习资料 · 党务公开"),
    Section("services", "下沉服务", "办", "#1d5e9c", "办事指南 · 预约办理"),
    Section("affairs", "社区管理", "务", "#2a6b3f", "村务公开 · 财务公示"),
    Section("safety", "平安社区", "安", "#80461b", "安全提示 · 防诈骗"),
    Section("elderly", "养老助老", "老", "#8c3b6b", "报平安 · 一键求助"),
    Section("live", "视频直播", "视", "#5b3d91", "频道 · 节目指南"),
    Section("interaction", "政民互动", "言", "#1f6b73", "我要反映 · 民意调查"),
    Section("meetings", "社区会议", "会", "#4d5a1e", "会议直播 · 回看"),
)
SECTION_KEYS = tuple(s.key for s in SECTIONS)
BY_KEY = {s.key: s for s in SECTIONS}
