"""The project's shape, kept: what docs/architecture.md promises a newcomer, checked on every run."""
from __future__ import annotations

import ast
from pathlib import Path

from bot import INITIAL_EXTENSIONS

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ("commands", "voice", "audio", "model", "storage", "localdiscord", "playground")
MAX_LINES = 500


def runtime_files(*suffixes: str) -> list[Path]:
    files = [ROOT / name for name in ("bot.py", "config.py", "errors.py")]
    for package in RUNTIME:
        files += [p for p in (ROOT / package).rglob("*") if p.suffix in suffixes and "__pycache__" not in p.parts]
    return sorted(files)


def imported_modules(path: Path) -> list[str]:
    """Every module a file imports when it runs, anywhere in it (imports only for type
    checkers, under `if TYPE_CHECKING:`, are not run and not counted)."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return names


def test_no_runtime_file_is_over_500_lines():
    long = {str(p.relative_to(ROOT)): n for p in runtime_files(".py", ".js")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these along their seams: {long}"


def test_commands_holds_cogs_only_and_bot_loads_every_one():
    cogs = sorted(p.stem for p in (ROOT / "commands").glob("*.py") if p.stem != "__init__")
    for name in cogs:
        tree = ast.parse((ROOT / "commands" / f"{name}.py").read_text())
        top = {node.name for node in tree.body if isinstance(node, (ast.AsyncFunctionDef, ast.ClassDef))}
        assert "setup" in top, f"commands/{name}.py is not a cog extension (no `async def setup(bot)`)"
    assert sorted(INITIAL_EXTENSIONS) == sorted(f"commands.{name}" for name in cogs)


def test_the_logic_never_imports_discord():
    for package in ("audio", "model", "storage"):
        for path in (ROOT / package).rglob("*.py"):
            found = [m for m in imported_modules(path) if m == "discord" or m.startswith("discord.")]
            assert not found, f"{path.relative_to(ROOT)} imports {found}: keep Discord in commands/ and voice/"


def test_imports_point_down():
    """voice/ never reaches up into the cogs; the kit never imports a cog; the logic imports neither."""
    rules = {"voice": ("commands", "bot"), "commands/kit": ("bot",), "audio": ("commands", "voice", "bot"),
             "model": ("commands", "voice", "bot"), "storage": ("commands", "voice", "bot")}
    cog_modules = {f"commands.{p.stem}" for p in (ROOT / "commands").glob("*.py")}
    for folder, forbidden in rules.items():
        for path in (ROOT / folder).rglob("*.py"):
            for module in imported_modules(path):
                up = module.split(".")[0] in forbidden or (folder == "commands/kit" and module in cog_modules)
                assert not up, f"{path.relative_to(ROOT)} imports {module}"


def test_only_voice_internals_touches_discord_voice_internals():
    for path in runtime_files(".py"):
        if path.parts[-2:] == ("voice", "internals.py") or "localdiscord" in path.parts:
            continue
        assert "discord.voice_state" not in imported_modules(path), f"{path.relative_to(ROOT)}: use voice/internals.py"
