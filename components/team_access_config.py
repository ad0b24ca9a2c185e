"""The `access` stack config key: which identity-provider groups get which role in the stack's namespace
(components.team_access renders the Roles and RoleBindings).

`access: [{group, role}]`, `role` one of `view`, `edit`, `deployer` (README, "Team access", says what each grants).
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator

from components.config_base import CamelModel


class AccessRole(str, Enum):
    VIEW = "view"
    EDIT = "edit"
    DEPLOYER = "deployer"


ROLE_SUMMARIES = {
    AccessRole.VIEW: "read everything the platform runs in the namespace, but not Secrets",
    AccessRole.EDIT: "view, plus scaling Deployments, deleting pods and on-demand database backups; still no Secrets",
    AccessRole.DEPLOYER: "what `pulumi up` of this program needs: the identity for CI",
}

# Kubernetes' own groups: system:authenticated is every signed-in user, system:serviceaccounts every pod's
# identity, system:masters bypasses RBAC altogether. A grant to one of them is never what a team means.
RESERVED_GROUP_PREFIX = "system:"


class AccessGrant(CamelModel):
    """One group of the cluster's identity provider and the role it gets in the stack's namespace."""

    # The name exactly as the API server sees it in the user's groups (an OIDC `groups` claim, with the
    # `--oidc-groups-prefix` if the cluster sets one): RBAC compares it byte for byte.
    group: str = Field(min_length=1, max_length=253)
    role: AccessRole

    @field_validator("group")
    @classmethod
    def an_identity_provider_group(cls, group: str) -> str:
        if group != group.strip():
            raise ValueError("has leading or trailing whitespace, which RBAC would compare literally; remove it")
        if group.startswith(RESERVED_GROUP_PREFIX):
            raise ValueError(
                f"'{RESERVED_GROUP_PREFIX}' groups are Kubernetes' own (system:authenticated is every user); "
                "grant a group of your identity provider instead"
            )
        return group

    @field_validator("role", mode="before")
    @classmethod
    def a_known_role(cls, role: Any) -> Any:
        if not isinstance(role, str) or role not in {known.value for known in AccessRole}:  # a list is no role either
            choices = "; ".join(f"{known.value} ({summary})" for known, summary in ROLE_SUMMARIES.items())
            raise ValueError(f"unknown role; use one of: {choices}")
        return role


def _each_grant_once(grants: list[AccessGrant]) -> list[AccessGrant]:
    first_index: dict[tuple[str, AccessRole], int] = {}
    for index, grant in enumerate(grants):
        key = (grant.group, grant.role)
        if key in first_index:
            raise ValueError(
                f"group '{grant.group}' is granted '{grant.role.value}' twice (access[{first_index[key]}] and "
                f"access[{index}]); remove one"
            )
        first_index[key] = index
    return grants


# The type of StackConfig.access: a list in which each (group, role) appears once.
AccessGrants = Annotated[list[AccessGrant], AfterValidator(_each_grant_once)]
