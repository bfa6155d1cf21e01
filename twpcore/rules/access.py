"""The forward-rule switches as HTTP handlers need them: a refusal becomes the JSON error the API answers."""

from __future__ import annotations

from twpcore.parameters import ParameterRegistry
from twpcore.routing import ApiError
from twpcore.rules import store as rules_db
from twpcore.rules.model import RuleError
from twpcore.store import Store


async def check_pbx_forwarding(store: Store, parameters: ParameterRegistry, user_id: int, forward_type: str, setting: bool) -> None:
    """403 naming the parameter when the user may not change their device's forwarding (``PUT /devices/forwarding``)."""
    try:
        await store.read(rules_db.check_pbx_forwarding, parameters, user_id, forward_type, setting)
    except RuleError as exc:
        raise ApiError(exc.status, "forbidden", str(exc), exc.field) from None
