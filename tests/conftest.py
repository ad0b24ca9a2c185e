"""Shared fixtures: each stack is rendered once per session (rendering is the expensive part)."""

from __future__ import annotations

import pytest

from tools import engine

STACKS = ("local", "staging", "prod")


@pytest.fixture(scope="session")
def rendered() -> dict[str, engine.Rendering]:
    return {stack: engine.render(stack) for stack in STACKS}


@pytest.fixture(params=STACKS)
def stack_rendering(request, rendered) -> engine.Rendering:
    return rendered[request.param]


@pytest.fixture(autouse=True, scope="session")
def no_passphrase_from_the_callers_shell():
    """A developer's PULUMI_CONFIG_PASSPHRASE must not change what the suite renders (or fail other stacks)."""
    import os

    saved = {name: os.environ.pop(name) for name in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE") if name in os.environ}
    yield
    os.environ.update(saved)
