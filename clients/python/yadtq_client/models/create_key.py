from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.scope import Scope
from ..types import UNSET, Unset

T = TypeVar("T", bound="CreateKey")


@_attrs_define
class CreateKey:
    """Body of `POST /admin/keys`.

    Attributes:
        scopes (list[Scope]): What the key may do (at least one; `admin` implies every scope but
            `cluster` within the tenant). `cluster` is refused (403): only the
            bootstrap key and `yadtq-gateway keys create` grant it.
        name (str | Unset): What the key is for, shown in listings (at most 200 characters, no NUL).
        queues (list[str] | None | Unset): Queues the key is limited to; absent or null: every queue.
        tenant (None | str | Unset): Tenant whose tasks the key reaches (1-64 letters, digits, `-`, `_`);
            default: the caller's. Another tenant than the caller's needs the `cluster` scope.
    """

    scopes: list[Scope]
    name: str | Unset = UNSET
    queues: list[str] | None | Unset = UNSET
    tenant: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        scopes = []
        for scopes_item_data in self.scopes:
            scopes_item = scopes_item_data.value
            scopes.append(scopes_item)

        name = self.name

        queues: list[str] | None | Unset
        if isinstance(self.queues, Unset):
            queues = UNSET
        elif isinstance(self.queues, list):
            queues = self.queues

        else:
            queues = self.queues

        tenant: None | str | Unset
        if isinstance(self.tenant, Unset):
            tenant = UNSET
        else:
            tenant = self.tenant

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "scopes": scopes,
            }
        )
        if name is not UNSET:
            field_dict["name"] = name
        if queues is not UNSET:
            field_dict["queues"] = queues
        if tenant is not UNSET:
            field_dict["tenant"] = tenant

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        scopes = []
        _scopes = d.pop("scopes")
        for scopes_item_data in _scopes:
            scopes_item = Scope(scopes_item_data)

            scopes.append(scopes_item)

        name = d.pop("name", UNSET)

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

        def _parse_tenant(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        tenant = _parse_tenant(d.pop("tenant", UNSET))

        create_key = cls(
            scopes=scopes,
            name=name,
            queues=queues,
            tenant=tenant,
        )

        return create_key
