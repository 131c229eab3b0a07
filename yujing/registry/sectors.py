"""The sector vocabulary (行业领域): one list, used by the register, token scopes and figures.

The codes follow the sectors that the national monitoring and early-warning programmes name
(hazardous chemicals, mines, tailings, the industry-and-trade sectors of 工贸企业, fireworks);
`dust_explosion` and `aluminium_casting` are the 工贸 key categories the 2025 full-coverage
target names separately."""

from __future__ import annotations

SECTORS: dict[str, tuple[str, str]] = {
    "coal_mine": ("煤矿", "coal mine"),
    "non_coal_mine": ("非煤矿山", "non-coal mine"),
    "tailings": ("尾矿库", "tailings pond"),
    "hazardous_chemicals": ("危险化学品", "hazardous chemicals"),
    "metallurgy": ("冶金", "metallurgy"),
    "nonferrous": ("有色", "non-ferrous metals"),
    "aluminium_casting": ("铝加工（深井铸造）", "aluminium deep-well casting"),
    "dust_explosion": ("粉尘涉爆", "dust explosion"),
    "fireworks": ("烟花爆竹", "fireworks"),
    "building_materials": ("建材", "building materials"),
    "machinery": ("机械", "machinery"),
    "light_industry": ("轻工", "light industry"),
    "textile": ("纺织", "textile"),
    "other": ("其他", "other"),
}

SUPERVISION_CLASSES = ("A", "B", "C", "D")
ENTERPRISE_STATES = ("operating", "halted", "closed")
# Stricter first: a closed enterprise closes its sites, a halted one halts them.
_STRICTNESS = {"operating": 0, "halted": 1, "closed": 2}


def effective_state(enterprise_state: str | None, site_state: str | None) -> str:
    """What the rules see for a site: the stricter of its own state and its enterprise's."""
    a, b = enterprise_state or "operating", site_state or "operating"
    return a if _STRICTNESS.get(a, 0) > _STRICTNESS.get(b, 0) else b
