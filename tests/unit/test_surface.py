"""synth's surface changes only on purpose: the check author's API (`synth.__all__`) is
pinned, and every exception synth defines derives from `SynthError` and is in the tree
written at the top of synth.errors."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import synth
from synth.errors import SynthError

CHECK_AUTHOR_API = [
    "CheckDefinitionError",
    "CheckFailure",
    "FailureType",
    "Flow",
    "Phase",
    "Response",
    "check",
]
NOT_ERRORS = {"FlowAborted"}  # control flow (a BaseException), documented as such


def test_the_check_author_api_is_pinned() -> None:
    assert synth.__all__ == CHECK_AUTHOR_API
    for name in CHECK_AUTHOR_API:
        assert getattr(synth, name) is not None


def synth_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(synth.__path__, "synth."):
        if module_info.name.startswith("synth.demo"):  # the demo target, an app of its own
            continue
        module = importlib.import_module(module_info.name)
        for name, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = value
    return found


def test_every_synth_exception_derives_from_synth_error_and_is_in_the_tree() -> None:
    exceptions = synth_exceptions()
    assert "synth.store.records.StoreError" in exceptions
    assert len(exceptions) >= 20
    tree = synth.errors.__doc__ or ""
    for qualified, cls in exceptions.items():
        if cls.__name__ in NOT_ERRORS:
            assert not issubclass(cls, Exception), qualified
            continue
        assert issubclass(cls, SynthError), f"{qualified} does not derive from SynthError"
        assert cls.__name__ in tree, f"{qualified} is missing from the tree in synth.errors"
