"""What the Pulumi CLI runs for `--policy-pack policies`: serves every policy of the pack over gRPC.

The CLI runs this directory as a script, with the directory itself first on sys.path (and often as the working
directory). Sibling modules would then be importable as top-level modules, and `secrets.py` would shadow the
standard library's `secrets` for every library imported afterwards. So the directory is taken off sys.path and
the pack is imported as a package from its parent, exactly as tests and tools/ import it (`policies.pack`).
"""

import importlib
import sys
from pathlib import Path

PACK_DIR = Path(__file__).resolve().parent


def _import_pack_as_package():
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != PACK_DIR]
    if str(PACK_DIR.parent) not in sys.path:
        sys.path.insert(0, str(PACK_DIR.parent))
    return importlib.import_module(f"{PACK_DIR.name}.pack")


pack = _import_pack_as_package()

from pulumi_policy import PolicyPack  # noqa: E402 - after sys.path is fixed, like every other import

# Blocks forever: starts the gRPC server the CLI talks to.
PolicyPack(name=pack.PACK_NAME, enforcement_level=pack.DEFAULT_ENFORCEMENT, policies=pack.ALL_POLICIES)
