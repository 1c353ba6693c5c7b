"""Errors raised by the spatial core. They say what is wrong and what to do; they know nothing of HTTP."""


class GeoInputError(ValueError):
    """Input the spatial core cannot work with (bad coordinates, unknown CRS, empty geometry...)."""


class UnknownCRSError(GeoInputError):
    """A CRS that is neither an EPSG code nor one of the names Zeren knows."""


class CoordinateError(GeoInputError):
    """Coordinates out of range, or lat/lon swapped."""
