"""A new plugin from the template: ``python -m hub.testing.newplugin NAME`` (or ``make plugin NAME=...``).

Copies ``contrib/plugin-template`` to ``plugins/<name>`` and renames what names the example: the
distribution (``aktenhub-<kind>``), the package (``hub_<name>``), the entry point and connector kind
(``<kind>``, the ``type:`` in configurations), the classes (``<Name>Sink``, ``<Name>Config``, ...) and the
test module. What is left mentioning "example" is prose to adapt by hand. ``make venv`` then installs
the new plugin and ``make test`` runs its tests, the contract suites included.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

TEMPLATE = Path("contrib") / "plugin-template"
_SOURCE_TREE = Path(__file__).resolve().parents[2]
_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
_SKIP = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", ".mypy_cache", ".ruff_cache")
# Lines of the template that only make sense in the template itself
_TEMPLATE_ONLY = re.compile(r"^# The Aktenhub plugin template:.*\n(?:#.*\n)*", re.M)


@dataclass(frozen=True)
class PluginNames:
    """The names a plugin called `name` gets."""

    folder: str  # plugins/<folder>, e.g. "bauportal_nrw"
    kind: str  # entry point name and connector kind, e.g. "bauportal-nrw"
    package: str  # e.g. "hub_bauportal_nrw"
    classes: str  # class name prefix, e.g. "BauportalNrw"

    @classmethod
    def of(cls, name: str) -> PluginNames:
        """The names for `name` (lower case letters and digits, words joined by - or _)."""
        if not _NAME.match(name) or name in ("hub", "example"):
            raise ValueError(
                f"{name!r} is no plugin name: lower case letters and digits, words joined by - or _ (e.g. k3)"
            )
        words = re.split(r"[-_]", name)
        return cls(
            folder="_".join(words),
            kind="-".join(words),
            package="hub_" + "_".join(words),
            classes="".join(w[:1].upper() + w[1:] for w in words),
        )

    def replacements(self) -> list[tuple[str, str]]:
        """Template text -> this plugin's, most specific first."""
        return [
            ("ExampleFachverfahren", self.classes),
            ("fachverfahren_example", self.folder),
            ("fachverfahren-example", self.kind),
        ]


def default_template() -> Path:
    """The template: ./contrib/plugin-template, else the source tree's."""
    for base in (Path.cwd(), _SOURCE_TREE):
        if (base / TEMPLATE / "pyproject.toml").is_file():
            return base / TEMPLATE
    raise FileNotFoundError(f"{TEMPLATE} not found: run from the Aktenhub source tree or pass --template")


def new_plugin(name: str, into: Path, template: Path | None = None) -> Path:
    """Copy the template to `into`/<folder> with every example name replaced; returns the new folder."""
    names = PluginNames.of(name)
    source = template or default_template()
    target = into / names.folder
    if target.exists():
        raise FileExistsError(f"{target} exists already")
    shutil.copytree(source, target, ignore=_SKIP)
    (target / "hub_fachverfahren_example").rename(target / names.package)
    (target / "tests" / "test_fachverfahren_example.py").rename(target / "tests" / f"test_{names.folder}.py")
    for path in sorted(target.rglob("*")):
        if not path.is_file() or path.suffix not in (".py", ".toml", ".md", ".typed", ".yaml", ".j2"):
            continue
        text = path.read_text(encoding="utf-8")
        changed = _TEMPLATE_ONLY.sub("", text)
        for old, new in names.replacements():
            changed = changed.replace(old, new)
        if changed != text:
            path.write_text(changed, encoding="utf-8")
    return target


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m hub.testing.newplugin NAME [--into plugins] [--template DIR]``."""
    parser = argparse.ArgumentParser(
        prog="python -m hub.testing.newplugin", description=__doc__.splitlines()[0]
    )
    parser.add_argument("name", help="the plugin's name, e.g. k3 (kind k3, package hub_k3)")
    parser.add_argument("--into", type=Path, default=Path("plugins"), help="where the plugin folder goes")
    parser.add_argument(
        "--template", type=Path, default=None, help="the template (default: contrib/plugin-template)"
    )
    args = parser.parse_args(argv)
    try:
        target = new_plugin(args.name, args.into, args.template)
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        print(f"newplugin: {exc}", file=sys.stderr)
        return 2
    names = PluginNames.of(args.name)
    print(f"{target}: distribution aktenhub-{names.kind}, package {names.package}, kind {names.kind}")
    print(f"next: make venv && .venv/bin/python -m pytest -q {target}/tests; grep -rn -i example {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
