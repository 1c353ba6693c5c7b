"""The HTTP routers: each parses, calls one use case of zeren.api.service, renders."""
