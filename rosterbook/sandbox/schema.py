"""The sandbox's SCIM description: RFC 7643 schemas, the rosterbook HR extension, resource types, config."""

from __future__ import annotations

from typing import Any

from scim2_models import ResourceType, Schema, ScimProvider, ServiceProviderConfig
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME
from scim2_server.utils import load_default_resource_types, load_default_schemas, load_default_service_provider_config

HR_SCHEMA = "urn:rosterbook:params:scim:schemas:extension:hr:2.0:User"
"""URN of the rosterbook HR extension (account status, team, position, locations, start date)."""

ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
"""URN of the RFC 7643 enterprise User extension."""

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
"""URN of the RFC 7643 core User schema."""

GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
"""URN of the RFC 7643 core Group schema."""

ACCOUNT_STATUSES = ("Active", "Pending", "Archived")
"""The canonical values of ``accountStatus``; only Active users are ``active``."""


def _string(name: str, description: str, *, multi: bool = False, canonical: tuple[str, ...] = ()) -> dict[str, Any]:
    attribute: dict[str, Any] = {
        "name": name,
        "type": "string",
        "multiValued": multi,
        "description": description,
        "required": False,
        "caseExact": False,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
    }
    if canonical:
        attribute["canonicalValues"] = list(canonical)
    return attribute


def hr_schema() -> Schema:
    """The HR extension schema, as /Schemas publishes it."""
    return Schema.model_validate(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": HR_SCHEMA,
            "name": "HRUser",
            "description": "What HR and learning platforms carry beyond SCIM core: account status, team, position, locations.",
            "attributes": [
                _string(
                    "accountStatus",
                    "Active (can log in, holds a seat), Pending (created, not invited) or Archived (deactivated).",
                    canonical=ACCOUNT_STATUSES,
                ),
                _string("team", "The team the user belongs to."),
                _string("position", "The user's position in the career framework."),
                _string("locations", "The user's locations (a name may contain '|').", multi=True),
                _string("startDate", "First working day, YYYY-MM-DD."),
            ],
        }
    )


def build_provider(*, bearer_token: bool = False) -> ScimProvider:
    """The ScimProvider the sandbox serves: core schemas + enterprise + HR extension, every feature but cursors."""
    schemas = [*load_default_schemas().values(), hr_schema()]
    resource_types = load_default_resource_types()
    user = resource_types["User"].model_dump()
    user["schemaExtensions"] = [
        {"schema": ENTERPRISE_SCHEMA, "required": False},
        {"schema": HR_SCHEMA, "required": False},
    ]
    config: ServiceProviderConfig = load_default_service_provider_config()
    if bearer_token:
        config.authentication_schemes = [*(config.authentication_schemes or []), BEARER_TOKEN_SCHEME]
    return ScimProvider.from_discovery(
        schemas,
        [ResourceType.model_validate(user), resource_types["Group"]],
        config=config,
    )
