"""`kubelite image build` imports only what a build uses: the builder reaches into the runc runtime
for its rootfs, spec and mount helpers, and that must not drag in the pod runtime, the API client
or aiohttp (a quarter of a second of every build command's start). The runc package's public names
still import as before, lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("aiohttp", "kubelite.client", "kubelite.agent.runtime.runc.runtime", "kubelite.agent.runtime.runc.launch")


def _loaded_after(statement: str) -> set[str]:
    """Which of HEAVY a fresh interpreter has loaded after running `statement`."""
    probe = f"import sys\n{statement}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_build_executor_does_not_import_the_pod_runtime_or_the_client() -> None:
    assert _loaded_after("import kubelite.images.build.executor") == set()


def test_the_build_command_module_does_not_import_them_either() -> None:
    assert _loaded_after("import kubelite.cli.image_build, kubelite.images.build.executor") == set()


def test_runc_package_names_still_import() -> None:
    from kubelite.agent.runtime.runc import ContainerNotRunning, RuncConfig, RuncRuntime, SpecError
    from kubelite.agent.runtime.runc.runtime import RuncRuntime as Direct
    from kubelite.agent.runtime.runc.spec import SpecError as DirectSpecError

    assert RuncRuntime is Direct and SpecError is DirectSpecError
    assert issubclass(ContainerNotRunning, Exception) and RuncConfig is not None


def test_runc_package_still_raises_for_unknown_names() -> None:
    import kubelite.agent.runtime.runc as runc

    assert "RuncRuntime" in dir(runc)
    with pytest.raises(AttributeError, match="NoSuchName"):
        runc.NoSuchName  # type: ignore[attr-defined]  # noqa: B018
