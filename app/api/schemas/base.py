"""The base of every response document: typed fields, and nothing the domain wrote is dropped."""

from typing import Any

from pydantic import BaseModel, ConfigDict


class Document(BaseModel):
    """A response document: its declared fields are validated; undeclared keys pass through unchanged.

    FastAPI filters a response through its model. A view that gains a key (a new catalog field, a new
    job attribute) would lose it silently behind a model that does not know it yet; ``extra="allow"``
    keeps the JSON keys exactly as the domain wrote them, and the schema still types every known field.
    """

    model_config = ConfigDict(extra="allow")


def example(**fields: Any) -> ConfigDict:
    """A model config with one OpenAPI example (undeclared keys still pass through)."""
    return ConfigDict(extra="allow", json_schema_extra={"examples": [fields]})


__all__ = ["Document", "example"]
