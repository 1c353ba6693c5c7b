"""The data Zeren ships (see README.md here): the demo city's boundaries and the facility tables.

A package only so that ``importlib.resources.files("zeren.data")`` finds the files wherever Zeren is installed."""
