"""A corpus of realistic broken stack files (tests/broken_stacks/): each is refused the way its first line says.

Each file is a shipped stack file with one mistake a user makes (YAML habits, typos, resource mistakes, schedules,
images, names, secrets). The first line says the expected exit code, which stack file it replaces and a fragment of
the message (the key path, or the file and line for YAML errors). None may be accepted, none may give a traceback.
Regenerate or add cases by hand: a file is self-describing.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.test_preview_outputs import copy_project
from tools import preview

CORPUS = sorted((Path(__file__).parent / "broken_stacks").glob("*.yaml"))
EXPECT = re.compile(r"# expect: exit (?P<code>\d+), stack: (?P<stack>\w+), says: (?P<says>.+)")


def expectation(path: Path) -> tuple[int, str, str]:
    match = EXPECT.fullmatch(path.read_bytes().split(b"\n", 1)[0].decode())
    assert match, f"{path.name}: the first line must say '# expect: exit N, stack: S, says: <python string>'"
    return int(match["code"]), match["stack"], ast.literal_eval(match["says"])


def test_the_corpus_is_large_and_covers_every_stack():
    assert len(CORPUS) >= 60
    assert {expectation(path)[1] for path in CORPUS} == {"local", "staging", "prod"}


@pytest.mark.parametrize("path", CORPUS, ids=lambda path: path.stem)
def test_a_broken_stack_file_is_refused_with_its_key_and_no_traceback(path, tmp_path, capsys):
    code, stack, says = expectation(path)
    project = copy_project(tmp_path)
    (project / f"Pulumi.{stack}.yaml").write_bytes(path.read_bytes())
    assert preview.main(["--stack", stack, "--project-dir", str(project)]) == code
    err = capsys.readouterr().err
    assert says in err
    assert "Traceback" not in err
    assert err.startswith("error: ")
