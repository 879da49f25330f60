"""Which models each configured provider will serve: what the router will route to.

The same rule as `Router.available` (a catalog model, enabled, whose provider is configured and,
when the provider's model list is narrowed, listed in it). The startup banner and
`llm-gateway plan` use it without building a router.
"""

from __future__ import annotations

from llm_gateway.config import Settings
from llm_gateway.selection.catalog import Catalog, load_catalog


def served_models(settings: Settings, catalog: Catalog | None = None) -> dict[str, list[str]]:
    """Provider name -> its model ids the gateway will route to, in catalog order."""
    catalog = catalog or load_catalog(settings.catalog_overrides)
    served: dict[str, list[str]] = {}
    for config in settings.providers:
        served[config.name] = [
            entry.model for entry in catalog.entries
            if entry.provider == config.name and (not config.models or entry.model in config.models)
        ]
    return served


def describe_served(served: dict[str, list[str]]) -> str:
    """`groq 6 models, gemini 1 model`, or a plain statement that nothing is configured."""
    if not served:
        return "none configured"
    return ", ".join(f"{name} {len(models)} model{'' if len(models) == 1 else 's'}" for name, models in served.items())
