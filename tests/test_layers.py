"""The layers (issue 27 point 1): `sandbox/storage` knows where state lives and nothing of HTTP, `sandbox/core` knows
what a request meets and no vendor. Read from each module's imports, relative ones resolved."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sandbox"


def imports_in(package: str, source: str) -> set[str]:
    """The modules a file of `package` imports, as dotted names (`from .x import y` in sandbox.core: sandbox.core.x,
    and sandbox.core.x.y, which may be a module)."""
    parts, found = package.split("."), set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = parts[:len(parts) - node.level + 1] if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            found |= {name} | {f"{name}.{alias.name}" for alias in node.names}
    return found


def imports_of(path: Path) -> set[str]:
    package = ".".join(path.relative_to(PACKAGE.parent).parent.parts)
    return imports_in(package, path.read_text(encoding="utf-8"))


def modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("path", modules("storage"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_storage_imports_nothing_of_requests_vendors_or_flask(path):
    refused = ("sandbox.core", "sandbox.vendors", "sandbox.control", "sandbox.serving", "sandbox.app", "flask",
               "werkzeug")
    wrong = sorted(name for name in imports_of(path) if name.startswith(refused))
    assert wrong == [], f"{path.relative_to(PACKAGE)} imports {wrong}"


@pytest.mark.parametrize("path", modules("core"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_imports_no_vendor_and_no_control_api(path):
    wrong = sorted(name for name in imports_of(path) if name.startswith(("sandbox.vendors", "sandbox.control")))
    assert wrong == [], f"{path.relative_to(PACKAGE)} imports {wrong}"


def test_the_check_reads_relative_imports_as_the_modules_they_name():
    assert "sandbox.core.pipeline" in imports_in("sandbox.storage.redis", "from ...core import pipeline\n")
    assert "sandbox.core.world" in imports_in("sandbox.storage", "from ..core.world import World\n")
    assert imports_in("sandbox.storage.redis", "from ..codec import encode\n") == {"sandbox.storage.codec",
                                                                                  "sandbox.storage.codec.encode"}


def test_the_running_sandbox_is_what_the_pipeline_asks_of_it():
    """Issue 27 point 4: the pipeline's partner is typed (core/pipeline.RunningSandbox); app.Sandbox has each of its
    methods, with the same parameters, and each of its attributes."""
    import inspect

    from helpers import strict_app
    from sandbox.app import Sandbox
    from sandbox.core.pipeline import RunningSandbox

    running = strict_app(size=5).extensions["sandbox"]
    for name, member in vars(RunningSandbox).items():
        if inspect.isfunction(member) and not name.startswith("_"):
            ours = getattr(Sandbox, name)
            assert list(inspect.signature(ours).parameters) == list(inspect.signature(member).parameters), name
    for name in RunningSandbox.__annotations__:
        assert hasattr(running, name), name
