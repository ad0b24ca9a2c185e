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
