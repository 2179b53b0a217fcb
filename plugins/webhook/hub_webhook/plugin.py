"""The plugin module registered under entry point group ``aktenhub``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub import Connector, DemoScenario, hookimpl

from .demo import FormSolutionsScenario
from .source import WebhookSource


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:
    """The generic webhook source connector."""
    return [WebhookSource]


@hookimpl
def aktenhub_demo_scenarios() -> Sequence[DemoScenario]:
    """Form Solutions dog registrations (signed JSON, XML and multipart) into the e-file."""
    return [FormSolutionsScenario()]
