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

# Resident feedback (留言): the workflow of a case, and the default categories (editable: the store's
# feedback_categories table).
FEEDBACK_STATUSES: tuple[str, ...] = ("received", "accepted", "replied", "closed", "transferred")
FEEDBACK_STATUS_LABELS: dict[str, tuple[str, str]] = {
    "received": ("已收到", "received"),
    "accepted": ("已受理", "accepted"),
    "replied": ("已答复", "replied"),
    "closed": ("已办结", "closed"),
    "transferred": ("已转交", "transferred"),
}
DEFAULT_FEEDBACK_CATEGORIES: tuple[tuple[str, str, str], ...] = (
    ("public_space", "公共空间", "public space"),
    ("traffic", "交通", "traffic"),
    ("heritage", "历史文化", "heritage"),
    ("facilities", "公共设施", "facilities"),
    ("environment", "环境", "environment"),
    ("other", "其他", "other"),
)

# Disciplines of planners and teams, labelled (Chinese, English).
DISCIPLINE_LABELS: dict[str, tuple[str, str]] = {
    "planning": ("城乡规划", "planning"), "architecture": ("建筑", "architecture"),
    "landscape": ("风景园林", "landscape"), "transport": ("交通", "transport"), "municipal": ("市政", "municipal"),
    "land": ("土地", "land"), "heritage": ("历史文化保护", "heritage"), "sociology": ("社会学", "sociology"),
    "social_work": ("社会工作", "social work"), "law": ("法律", "law"), "operations": ("运营", "operations"),
    "ecology": ("生态", "ecology"), "economics": ("经济", "economics"), "public_art": ("公共艺术", "public art"),
    "urban_design": ("城市设计", "urban design"), "public_administration": ("公共管理", "public administration"),
    "other": ("其他", "other"),
}

# Team roles (负责人 / 成员 / 专家顾问), and what disciplines each zone kind's appointed people must cover by
# default (editable: the store's discipline_requirements table). Each requirement is a group of disciplines,
# met when the people have any one of them.
TEAM_ROLES: dict[str, tuple[str, str]] = {
    "lead": ("负责人", "team lead"), "member": ("成员", "member"), "adviser": ("专家顾问", "expert adviser"),
}
DEFAULT_DISCIPLINE_REQUIREMENTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "historic_area": (("heritage",), ("architecture",)),
    "village": (("planning",), ("land",)),
    "community": (("planning",), ("sociology", "social_work")),
    "key_area": (("urban_design",), ("transport",)),
}
