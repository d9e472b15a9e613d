"""Backend selection: Rust by default, Python on request, Python with a warning as a fallback."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import banditkit


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "BANDITKIT_BACKEND"}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-W", "default", "-c", textwrap.dedent(code)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_default_is_rust():
    out = run_python(
        "import banditkit; print(banditkit.backend(), banditkit.LinearBandit.__module__)"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["rust", "banditkit_rs"]


def test_env_selects_python():
    out = run_python(
        "import banditkit; print(banditkit.backend(), banditkit.LinearBandit.__module__)",
        BANDITKIT_BACKEND="python",
    )
    assert out.returncode == 0, out.stderr
    backend, module = out.stdout.split()
    assert backend == "python"
    assert module.startswith("banditkit.python")


def test_missing_extension_falls_back_with_warning():
    # `sys.modules[name] = None` makes that import fail, as a missing extension would.
    code = """
        import sys, warnings
        sys.modules["banditkit_rs"] = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import banditkit
        print(banditkit.backend())
        print(any(issubclass(w.category, RuntimeWarning) for w in caught))
    """
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["python", "True"]


def test_explicit_rust_without_extension_raises():
    code = """
        import sys
        sys.modules["banditkit_rs"] = None
        import banditkit
    """
    out = run_python(code, BANDITKIT_BACKEND="rust")
    assert out.returncode != 0
    assert "BANDITKIT_BACKEND=rust" in out.stderr


def test_unknown_backend_name_is_an_error():
    out = run_python("import banditkit", BANDITKIT_BACKEND="fortran")
    assert out.returncode != 0
    assert "must be 'rust' or 'python'" in out.stderr


# Package-level helpers that are not backend names.
PACKAGE_ONLY = {
    "backend",
    "__version__",
    "dumps",
    "load",
    "loads",
    "save",
    "BootstrapRidge",
    "BootstrapTS",
}


@pytest.mark.parametrize("name", [n for n in banditkit.__all__ if n not in PACKAGE_ONLY])
def test_drop_in_import_names(name):
    import banditkit.python
    import banditkit_rs

    assert hasattr(banditkit_rs, name)
    assert hasattr(banditkit.python, name)
    assert getattr(banditkit, name) is getattr(banditkit_rs, name)
