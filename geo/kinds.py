"""Zone kinds and the order in which they answer "who is responsible?".

Base kinds tile the city in a hierarchy (district > subdistrict > community; villages sit beside
communities under a township). Overlay kinds lie across the base tiling; some of them oblige a
project to consult their planners (which ones is data: see ``DEFAULT_CONSULTATION_KINDS``).
"""
from __future__ import annotations

# Most specific first: the lead of a site is taken from the first level that has one.
BASE_KINDS: tuple[str, ...] = ("community", "village", "subdistrict", "district")
LIFE_CIRCLE = "life_circle"
OVERLAY_KINDS: tuple[str, ...] = ("historic_area", "key_area", "renewal_area")
ALL_KINDS: tuple[str, ...] = BASE_KINDS + (LIFE_CIRCLE,) + OVERLAY_KINDS

# Which overlay kinds oblige consultation unless the store says otherwise.
DEFAULT_CONSULTATION_KINDS: tuple[str, ...] = ("historic_area", "key_area")

ROLES: tuple[str, ...] = ("lead", "member", "consultant")

KIND_LABELS: dict[str, tuple[str, str]] = {
    "district": ("区/县", "district"),
    "subdistrict": ("街道/乡镇", "subdistrict / township"),
    "community": ("社区", "community"),
    "village": ("村", "village"),
    "life_circle": ("15分钟社区生活圈", "15-minute community life circle"),
    "historic_area": ("历史文化街区", "historic conservation area"),
    "key_area": ("重点地区", "key urban-design area"),
    "renewal_area": ("城市更新片区", "urban-renewal area"),
}

# The workflow the responsible planners use for a project: 调研-评估-咨询-实施-反馈.
PROJECT_STATUSES: tuple[str, ...] = ("survey", "assessment", "consultation", "implementation", "feedback")
PROJECT_STATUS_LABELS: dict[str, tuple[str, str]] = {
    "survey": ("调研", "survey"),
    "assessment": ("评估", "assessment"),
    "consultation": ("咨询", "consultation"),
    "implementation": ("实施", "implementation"),
    "feedback": ("反馈", "feedback"),
}

ROLE_LABELS: dict[str, tuple[str, str]] = {
    "lead": ("责任规划师", "lead planner"),
    "member": ("团队成员", "team member"),
    "consultant": ("顾问", "consultant"),
}
