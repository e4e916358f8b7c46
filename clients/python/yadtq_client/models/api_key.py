from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar, cast
from uuid import UUID

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.scope import Scope
from ..types import UNSET, Unset

T = TypeVar("T", bound="ApiKey")


@_attrs_define
class ApiKey:
    """A key as listings show it: never the token, only its first characters.

    Attributes:
        created_at (datetime.datetime): Creation time.
        created_by (str): Who created it: `key:<id>` (admin API), `cli` or `bootstrap`.
        id (UUID): Key id (what `revoke` takes).
        name (str): Free text given at creation, e.g. "billing service".
        scopes (list[Scope]): What the key may do.
        tenant (str): Tenant whose tasks the key reaches.
        token_prefix (str): The token's first 12 characters.
        queues (list[str] | None | Unset): Queues the key may submit to and read; null: every queue.
        revoked_at (datetime.datetime | None | Unset): Revocation time; null while the key works.
    """

    created_at: datetime.datetime
    created_by: str
    id: UUID
    name: str
    scopes: list[Scope]
    tenant: str
    token_prefix: str
    queues: list[str] | None | Unset = UNSET
    revoked_at: datetime.datetime | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        created_at = self.created_at.isoformat()

        created_by = self.created_by

        id = str(self.id)

        name = self.name

        scopes = []
        for scopes_item_data in self.scopes:
            scopes_item = scopes_item_data.value
            scopes.append(scopes_item)

        tenant = self.tenant

        token_prefix = self.token_prefix

        queues: list[str] | None | Unset
        if isinstance(self.queues, Unset):
            queues = UNSET
        elif isinstance(self.queues, list):
            queues = self.queues

        else:
            queues = self.queues

        revoked_at: None | str | Unset
        if isinstance(self.revoked_at, Unset):
            revoked_at = UNSET
        elif isinstance(self.revoked_at, datetime.datetime):
            revoked_at = self.revoked_at.isoformat()
        else:
            revoked_at = self.revoked_at

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "created_at": created_at,
                "created_by": created_by,
                "id": id,
                "name": name,
                "scopes": scopes,
                "tenant": tenant,
                "token_prefix": token_prefix,
            }
        )
        if queues is not UNSET:
            field_dict["queues"] = queues
        if revoked_at is not UNSET:
            field_dict["revoked_at"] = revoked_at

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        created_by = d.pop("created_by")

        id = UUID(d.pop("id"))

        name = d.pop("name")

        scopes = []
        _scopes = d.pop("scopes")
        for scopes_item_data in _scopes:
            scopes_item = Scope(scopes_item_data)

            scopes.append(scopes_item)

        tenant = d.pop("tenant")

        token_prefix = d.pop("token_prefix")

        def _parse_queues(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                queues_type_0 = cast(list[str], data)

                return queues_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        queues = _parse_queues(d.pop("queues", UNSET))

        def _parse_revoked_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                revoked_at_type_0 = datetime.datetime.fromisoformat(data)

                return revoked_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        revoked_at = _parse_revoked_at(d.pop("revoked_at", UNSET))

        api_key = cls(
            created_at=created_at,
            created_by=created_by,
            id=id,
            name=name,
            scopes=scopes,
            tenant=tenant,
            token_prefix=token_prefix,
            queues=queues,
            revoked_at=revoked_at,
        )

        api_key.additional_properties = d
        return api_key

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
