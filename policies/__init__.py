"""CrossGuard policy pack of the platform: the same rules judge real previews, offline previews and plain YAML.

Modules import each other relatively (`from . import x`), so the pack is always the package `policies`:
from the repository root as `policies.pack`, and under the Pulumi CLI through `__main__.py`, which puts the
repository root on sys.path first (see there why the pack directory itself must not stay on it).
"""
