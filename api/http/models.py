"""Request and response shapes: they document the API (OpenAPI at ``/openapi.json``) and check what clients
send. Examples work on the demo city (``zeren serve --demo``)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from zeren.geo.kinds import ALL_KINDS, ROLES
from zeren.geo.kinds import PROJECT_STATUSES
from zeren.layers.schema import DISCIPLINES

DEMO_LON, DEMO_LAT = 104.0530, 30.6695  # Kuanzhai Alleys, inside a historic area of the demo city
DEMO_POINT = {"type": "Point", "coordinates": [DEMO_LON, DEMO_LAT]}
DEMO_POLYGON = {"type": "Polygon", "coordinates": [[[104.0515, 30.6685], [104.0545, 30.6685], [104.0545, 30.6705],
                                                    [104.0515, 30.6705], [104.0515, 30.6685]]]}

ZoneKind = Literal[ALL_KINDS]  # type: ignore[valid-type]
Role = Literal[ROLES]  # type: ignore[valid-type]
Status = Literal[PROJECT_STATUSES]  # type: ignore[valid-type]
DateText = str  # dates travel as YYYY-MM-DD strings, checked by api.deps.parse_as_of


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)


class ErrorBody(BaseModel):
    detail: str = Field(description="What is wrong and what to do about it.")
    error: str = Field(description="The kind of error (e.g. NotFoundError, CoordinateError).")
    problems: list[str] = Field(default_factory=list, description="Each bad field or row, when there are several.")


class Link(_Out):
    href: str
    rel: str
    type: str | None = None
    title: str | None = None


class Geometry(_Out):
    type: str = Field(description="GeoJSON geometry type (RFC 7946), lon/lat WGS84.")
    coordinates: Any = None


# -- planners and zones as they appear inside answers ----------------------------------------------
class PlannerRef(_Out):
    id: str
    name: str | None = None
    organization: str | None = None
    disciplines: list[str] | None = None
    public_contact: str | None = None
    private_contact: str | None = Field(None, description="Only in answers to an admin token.")


class ZoneRef(_Out):
    kind: str
    code: str
    name: str
    name_en: str | None = None


class ZoneShare(ZoneRef):
    share: float = Field(description="Part of the site inside the zone (1.0 for a point).")


class Lead(_Out):
    planner: PlannerRef
    zone: ZoneRef


class PlannerHere(_Out):
    planner: PlannerRef
    role: str
    zone: ZoneRef
    reason: str


class Consultation(_Out):
    planner: PlannerRef
    zone: ZoneRef
    reason: str


class Nearest(_Out):
    zone: ZoneRef
    planner: PlannerRef
    distance_m: float


class SiteOut(_Out):
    lon: float
    lat: float
    given: list[float] = Field(description="The coordinates as given, in the CRS given.")
    crs: str


class LookupAnswer(_Out):
    covered: bool = Field(description="Whether a lead planner answers for the site.")
    lead: Lead | None
    planners: list[PlannerHere]
    consultations: list[Consultation]
    zones: list[ZoneShare]
    split: bool
    nearest: Nearest | None = Field(description="For an uncovered site: the nearest zone that has a lead (outside "
                                                "the service area, only when it is at most 50 km away).")
    outside_service_area: bool | None = Field(
        None, description="The site lies outside every zone in force (null when no zone is in force that day).")
    service_area_distance_m: float | None = Field(
        None, description="Metres to the nearest zone in force (0 inside one; null when none is in force).")
    notice: str | None = Field(
        None, description="Why an uncovered site is uncovered (bilingual): outside the service area, no edition "
                          "in force on that date, or no lead appointed here. Null when covered.")
    site: SiteOut
    as_of: str


# -- assign ----------------------------------------------------------------------------------------
class AssignedProperties(_Out):
    """The columns of ``zeren assign`` (input properties are kept beside them; on a name clash the
    assignment's value wins). A feature that could not be assigned has ``error`` instead."""

    covered: bool | None = None
    lead_planner_id: str | None = None
    lead_zone_kind: str | None = None
    lead_zone_code: str | None = None
    split: bool | None = None
    planners: list[dict] | None = None
    consultations: list[dict] | None = None
    zones: list[dict] | None = None
    nearest_zone_code: str | None = None
    nearest_planner_id: str | None = None
    nearest_distance_m: float | None = None
    error: str | None = None


class AssignedFeature(_Out):
    type: Literal["Feature"]
    id: str | int | None = None
    geometry: Geometry | None
    properties: AssignedProperties


class AssignedCollection(_Out):
    type: Literal["FeatureCollection"]
    features: list[AssignedFeature]
    as_of: str
    assigned: int
    errors: int


# -- zones -----------------------------------------------------------------------------------------
class ZoneProperties(_Out):
    kind: str
    code: str
    name: str
    name_en: str | None = None
    parent_code: str | None = None
    edition: int
    valid_from: str | None = None
    valid_to: str | None = None
    population: int | None = None
    attrs: dict = Field(default_factory=dict)


class ZoneFeature(_Out):
    type: Literal["Feature"]
    id: str
    geometry: Geometry | None
    properties: ZoneProperties


class FeaturePage(_Out):
    type: Literal["FeatureCollection"]
    features: list[dict]
    numberMatched: int
    numberReturned: int
    links: list[Link] = Field(default_factory=list)


class ZoneCollection(FeaturePage):
    features: list[ZoneFeature]


class AppointmentOut(_Out):
    id: int
    planner_id: str
    zone_kind: str
    zone_code: str
    role: str
    start: str
    end: str | None = None
    active: bool = Field(description="In force on the answer's as-of date (today unless as_of is given).")
    planner: PlannerRef | None = None
    already_present: bool | None = Field(None, description="On creation: true when the same appointment was "
                                                           "already there (nothing was added).")


class ZoneDetailProperties(ZoneProperties):
    in_force: bool
    editions: list[int]
    history: list[dict] = Field(description="Every stored version of the zone: edition, valid_from, valid_to "
                                            "(null = open), oldest first.")
    as_of: str
    parents: list[ZoneRef]
    children: list[ZoneRef]
    overlays: list[ZoneRef] = Field(description="Overlay zones and life circles that intersect this zone.")
    appointments: list[AppointmentOut] = Field(description="Appointments in force on as_of.")


class ZoneDetail(_Out):
    type: Literal["Feature"]
    id: str
    geometry: Geometry | None
    properties: ZoneDetailProperties


class ZonePlanners(_Out):
    zone: ZoneRef
    as_of: str
    lead: PlannerRef | None
    appointments: list[AppointmentOut]


# -- planners and appointments -----------------------------------------------------------------------
class PlannerIn(_In):
    id: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$", examples=["P900"])
    name: str = Field(min_length=1, max_length=200, examples=["示例规划师"])
    organization: str | None = Field(None, max_length=500, examples=["示例规划设计院"])
    disciplines: list[Literal[DISCIPLINES]] = Field(default_factory=list, max_length=20,  # type: ignore[valid-type]
                                                    examples=[["planning", "heritage"]])
    public_contact: str | None = Field(None, max_length=500, examples=["p900@planners.example.org"])
    private_contact: str | None = Field(None, max_length=500, examples=["+86-28-5550-0900"])


class PlannerPatch(_In):
    """Only the fields sent change; send null to clear an optional field."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"organization": "青羊区责任规划师团队（示例）",
                                                               "public_contact": "p006@planners.example.org"}]})

    name: str | None = Field(None, min_length=1, max_length=200)
    organization: str | None = Field(None, max_length=500)
    disciplines: list[Literal[DISCIPLINES]] | None = Field(None, max_length=20)  # type: ignore[valid-type]
    public_contact: str | None = Field(None, max_length=500)
    private_contact: str | None = Field(None, max_length=500)


class PlannerDetail(PlannerRef):
    appointments: list[AppointmentOut]


class PlannerPage(_Out):
    planners: list[PlannerRef]
    numberMatched: int
    numberReturned: int
    limit: int
    offset: int


class AppointmentIn(_In):
    planner_id: str = Field(min_length=1, max_length=64, examples=["P006"])
    zone_kind: ZoneKind = Field(examples=["subdistrict"])
    zone_code: str = Field(min_length=1, max_length=100, examples=["510105002"])
    role: Role = Field(examples=["member"])
    start: DateText = Field(description="First day (inclusive), YYYY-MM-DD.", examples=["2025-09-01"],
                            json_schema_extra={"format": "date"})
    end: DateText | None = Field(None, description="Day it ends (exclusive), YYYY-MM-DD; empty = open.",
                                 json_schema_extra={"format": "date"})


class AppointmentEnd(_In):
    end: DateText = Field(description="Day the appointment ends (exclusive), YYYY-MM-DD.", examples=["2026-01-01"],
                          json_schema_extra={"format": "date"})


class AppointmentPage(_Out):
    appointments: list[AppointmentOut]
    numberMatched: int
    numberReturned: int
    limit: int
    offset: int


# -- projects ----------------------------------------------------------------------------------------
class ProjectIn(_In):
    name: str = Field(min_length=1, max_length=200, examples=["宽窄巷子街巷微更新"])
    type: str | None = Field(None, max_length=100, examples=["micro-renewal"])
    scale: str | None = Field(None, max_length=100, examples=["small"])
    description: str | None = Field(None, max_length=10_000, examples=["沿街立面与公共空间整治（示例）"])
    geometry: dict = Field(description="A GeoJSON geometry in the `crs` of the request (default WGS84 lon/lat).",
                           examples=[DEMO_POLYGON])


class ProjectStatusIn(_In):
    status: Status = Field(description="The next step: survey 调研 → assessment 评估 → consultation 咨询 → "
                                       "implementation 实施 → feedback 反馈.", examples=["consultation"])
    note: str | None = Field(None, max_length=10_000, examples=["现场调研完成"])


class ProjectNoteIn(_In):
    note: str = Field(min_length=1, max_length=10_000, examples=["与社区居民座谈（示例）"])


class ProjectEvent(_Out):
    at: str
    status: str
    actor: str | None = Field(None, description="Who acted: the audit log's name for admins, else the role only "
                                                "(admin, planner, system).")
    note: str | None = None


class ProjectProperties(_Out):
    name: str
    type: str | None = None
    scale: str | None = None
    description: str | None = None
    status: str
    status_label: str
    created_at: str
    as_of: str
    lead_planner_id: str | None = None
    lead_zone_kind: str | None = None
    lead_zone_code: str | None = None
    consultation_planner_ids: list[str]


class ProjectDetailProperties(ProjectProperties):
    created_by: str | None = None
    assignment: dict = Field(description="The answer for the project's site, frozen when it was created.")
    events: list[ProjectEvent]
    repaired: bool | None = Field(None, description="Set on creation when an invalid polygon was repaired.")


class ProjectFeature(_Out):
    type: Literal["Feature"]
    id: int
    geometry: Geometry | None
    properties: ProjectProperties


class ProjectDetail(_Out):
    type: Literal["Feature"]
    id: int
    geometry: Geometry | None
    properties: ProjectDetailProperties


class ProjectCollection(FeaturePage):
    features: list[ProjectFeature]


# -- audit and health --------------------------------------------------------------------------------
class AuditEntry(_Out):
    id: int
    at: str
    actor: str
    action: str
    entity: str
    entity_id: str | None = None
    detail: Any = None


class AuditPage(_Out):
    entries: list[AuditEntry]
    numberMatched: int
    numberReturned: int
    limit: int
    offset: int


class Health(_Out):
    status: Literal["ok"]
    engine: str
    zones: int
    planners: int
    appointments: int
    version: str


# -- OGC API - Features ------------------------------------------------------------------------------
class OGCLanding(_Out):
    title: str
    description: str
    links: list[Link]


class OGCConformance(_Out):
    conformsTo: list[str]


class OGCCollection(_Out):
    id: str
    title: str
    description: str | None = None
    links: list[Link]
    extent: dict | None = None
    itemType: str = "feature"
    crs: list[str] = Field(default_factory=list)


class OGCCollections(_Out):
    collections: list[OGCCollection]
    links: list[Link]


class OGCFeature(_Out):
    type: Literal["Feature"]
    id: str | int
    geometry: Geometry | None
    properties: dict
    links: list[Link] = Field(default_factory=list)


class OGCItems(_Out):
    type: Literal["FeatureCollection"]
    features: list[OGCFeature]
    numberMatched: int
    numberReturned: int
    timeStamp: str
    links: list[Link]


ERRORS = {
    400: {"model": ErrorBody, "description": "The request cannot be read (e.g. not JSON)."},
    401: {"model": ErrorBody, "description": "No token, or a token that is not valid."},
    403: {"model": ErrorBody, "description": "The token's role may not do this."},
    404: {"model": ErrorBody, "description": "No such zone, planner, appointment or project."},
    409: {"model": ErrorBody, "description": "The change contradicts the store (e.g. an illegal workflow step)."},
    413: {"model": ErrorBody, "description": "Body or batch too large."},
    422: {"model": ErrorBody, "description": "Invalid input; `problems` lists each bad field."},
    503: {"model": ErrorBody, "description": "The store is unavailable."},
}


def errors(*codes: int) -> dict:
    """The documented error answers of an endpoint."""
    return {c: ERRORS[c] for c in codes}
