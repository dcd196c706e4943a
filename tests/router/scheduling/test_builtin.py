"""Every built-in plugin is registered, documented, and its README example builds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from triskel.common.routing_api import RoutingSettings
from triskel.router.scheduling.builtin import BUILTIN_PLUGINS, default_registry
from triskel.router.scheduling.config import build_scheduler
from triskel.router.scheduling.plugin import PluginContext

PLUGIN_FOLDERS = sorted(
    Path(module.__file__).parent for module in BUILTIN_PLUGINS if module.__file__
)
_YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.S)


def test_type_names_are_unique_and_kebab_case() -> None:
    names = [module.TYPE_NAME for module in BUILTIN_PLUGINS]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name) for name in names)
    assert [t.type_name for t in default_registry().types()] == sorted(names)


@pytest.mark.parametrize("folder", PLUGIN_FOLDERS, ids=lambda p: p.name)
def test_readme_example_builds(folder: Path) -> None:
    readme = folder / "README.md"
    assert readme.is_file(), f"{folder.name} has no README.md"
    blocks = _YAML_BLOCK.findall(readme.read_text())
    assert blocks, f"{readme} has no ```yaml example"
    document = yaml.safe_load(blocks[0])
    # The example is a `routing:` section, as it would appear in a `triskel up` file.
    settings = RoutingSettings.model_validate(document["routing"])
    build_scheduler(settings.scheduling(), default_registry(), PluginContext())
