"""15-minute community life circles (15分钟社区生活圈): generation, health check (体检) and planner coverage."""
from zeren.geo.lifecircle.circles import (
    DEFAULT_BUFFER_M,
    DEFAULT_MAX_SNAP_M,
    DEFAULT_SPEED_KMH,
    GB50180_RADII_M,
    LifeCircles,
    buffer_life_circles,
    centres_from_circles,
    life_circles,
    network_life_circles,
    walk_distance_m,
)
from zeren.geo.lifecircle.coverage import circle_planners, uncovered_circles
from zeren.geo.lifecircle.errors import LifeCircleError
from zeren.geo.lifecircle.health import HealthCheck, health_check, validate_categories
from zeren.geo.lifecircle.network import WalkNetwork, build_network

__all__ = [
    "DEFAULT_BUFFER_M", "DEFAULT_MAX_SNAP_M", "DEFAULT_SPEED_KMH", "GB50180_RADII_M", "LifeCircleError",
    "LifeCircles", "WalkNetwork", "buffer_life_circles", "build_network", "centres_from_circles", "life_circles",
    "network_life_circles", "walk_distance_m", "circle_planners", "uncovered_circles", "HealthCheck", "health_check",
    "validate_categories",
]
