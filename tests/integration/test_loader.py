"""Discovering checks on disk: Python and YAML files, every problem at its file and line,
and no broken file hiding the others."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from synth.checks import api
from synth.checks.loader import LoadedChecks, load_checks
from synth.checks.problems import LoadProblem


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


GOOD_PY = """\
    import synth
    from helpers import TAG

    @synth.check(service="shop", every="30s", tags=[TAG])
    async def browse(flow: synth.Flow) -> None:
        \"\"\"The catalogue answers.\"\"\"
        (await flow.get("/health")).expect_status(200)
    """

HELPERS_PY = """\
    TAG = "from-helper"
    """

SYNTAX_ERROR_PY = """\
    import synth

    def broken(:
        pass
    """

RAISES_PY = """\
    import synth

    def configure():
        return {}["missing-setting"]

    SETTINGS = configure()
    """

BAD_DECORATOR_PY = """\
    import synth


    @synth.check(service="shop", every="soon")
    async def orders(flow: synth.Flow) -> None:
        pass
    """

GOOD_YAML = """\
    name: health
    service: shop
    steps:
      - request: {path: /health}
    """

BAD_KEY_YAML = """\
    name: bad-key
    service: shop
    steps:
      - request:
          path: /health
        expectt: {status: 200}
    """

BAD_SYNTAX_YAML = """\
    name: bad-syntax
    service: shop
    steps: [
      {request: {path: /x}
    """


@pytest.fixture
def checks_dir(tmp_path: Path) -> Path:
    root = tmp_path / "checks"
    write(root / "good.py", GOOD_PY)
    write(root / "helpers.py", HELPERS_PY)
    write(root / "syntax_error.py", SYNTAX_ERROR_PY)
    write(root / "raises.py", RAISES_PY)
    write(root / "bad_decorator.py", BAD_DECORATOR_PY)
    write(root / "good.yaml", GOOD_YAML)
    write(root / "bad_key.yaml", BAD_KEY_YAML)
    write(root / "bad_syntax.yaml", BAD_SYNTAX_YAML)
    write(root / "sub" / "nested.yml", GOOD_YAML.replace("health", "nested"))
    # Never loaded: private modules, pytest's conftest, hidden folders, other files.
    write(root / "_private.py", "raise RuntimeError('private modules are not checks')\n")
    write(root / "conftest.py", "raise RuntimeError('conftest is not a check file')\n")
    write(root / ".hidden" / "x.yaml", "not: [valid\n")
    write(root / "_drafts" / "y.py", "def (\n")
    write(root / "README.txt", "notes\n")
    return root


def by_file(loaded: LoadedChecks) -> dict[str, list[LoadProblem]]:
    problems: dict[str, list[LoadProblem]] = {}
    for problem in loaded.problems:
        problems.setdefault(Path(problem.path).name, []).append(problem)
    return problems


def test_every_broken_file_is_a_problem_at_its_line_and_the_good_checks_load(
    checks_dir: Path,
) -> None:
    loaded = load_checks([checks_dir])

    assert [c.name for c in loaded.checks] == ["browse", "health", "nested"]
    browse = loaded.checks[0]
    assert browse.tags == ("from-helper",)  # imported from helpers.py beside it
    assert browse.description == "The catalogue answers."
    assert browse.kind == "python"
    assert browse.source is not None
    assert Path(browse.source.path) == (checks_dir / "good.py").resolve()
    assert browse.source.line == 4
    health = loaded.checks[1]
    assert health.source is not None  # YAML sources are absolute too
    assert (Path(health.source.path), health.source.line) == ((checks_dir / "good.yaml"), 1)

    problems = by_file(loaded)
    assert sorted(problems) == [
        "bad_decorator.py",
        "bad_key.yaml",
        "bad_syntax.yaml",
        "raises.py",
        "syntax_error.py",
    ]
    assert all(len(found) == 1 for found in problems.values())
    [syntax] = problems["syntax_error.py"]
    assert (syntax.path, syntax.line) == (str(checks_dir / "syntax_error.py"), 3)
    assert "syntax error" in syntax.message
    [raises] = problems["raises.py"]
    assert raises.line == 4  # the innermost frame in the file, not the call at line 6
    assert raises.message == "KeyError at import: 'missing-setting'"
    [decorator] = problems["bad_decorator.py"]
    assert decorator.line == 4
    assert "check 'orders'" in decorator.message
    assert "not a duration: 'soon'" in decorator.message
    [bad_key] = problems["bad_key.yaml"]
    assert bad_key.line == 6
    assert "unknown key 'expectt' (did you mean 'expect'?)" in bad_key.message
    [bad_syntax] = problems["bad_syntax.yaml"]
    assert bad_syntax.line == 5
    assert "invalid YAML" in bad_syntax.message
    assert str(bad_syntax).startswith(f"{checks_dir / 'bad_syntax.yaml'}:5: invalid YAML")


def test_loading_restores_the_interpreter_state(checks_dir: Path) -> None:
    path_before = list(sys.path)
    load_checks([checks_dir])
    assert sys.path == path_before
    assert api.collector.active is None
    assert "helpers" not in sys.modules
    assert not any(name.endswith(("_raises", "_syntax_error")) for name in sys.modules)


def test_duplicate_names_keep_the_first_and_name_both_locations(tmp_path: Path) -> None:
    first = write(tmp_path / "a.py", GOOD_PY.replace("from helpers import TAG", 'TAG = "a"'))
    second = write(
        tmp_path / "b.yaml",
        """\
        checks:
          - name: other
            service: shop
            steps: [{request: {path: /}}]
          - name: browse
            service: shop
            steps: [{request: {path: /}}]
        """,
    )
    loaded = load_checks([tmp_path])
    assert [c.name for c in loaded.checks] == ["browse", "other"]
    assert loaded.checks[0].kind == "python"
    [problem] = loaded.problems
    assert (problem.path, problem.line) == (str(second), 5)
    assert f"duplicate check name 'browse': already defined at {first}:4" in problem.message


def test_the_same_file_given_twice_loads_once(tmp_path: Path) -> None:
    check = write(tmp_path / "checks" / "one.yaml", GOOD_YAML)
    loaded = load_checks([tmp_path / "checks", check])
    assert [c.name for c in loaded.checks] == ["health"]
    assert loaded.problems == ()


def test_missing_paths_and_foreign_files_are_problems(tmp_path: Path) -> None:
    good = write(tmp_path / "good.yaml", GOOD_YAML)
    notes = write(tmp_path / "notes.txt", "hello\n")
    loaded = load_checks([tmp_path / "nope", notes, good])
    assert [c.name for c in loaded.checks] == ["health"]
    assert [str(p) for p in loaded.problems] == [
        f"{tmp_path / 'nope'}: no such file or directory",
        f"{notes}: not a check file (expected .py, .yaml or .yml)",
    ]


def test_a_file_declaring_no_checks_is_fine(tmp_path: Path) -> None:
    write(tmp_path / "util.py", "ANSWER = 42\n")
    write(tmp_path / "empty.yaml", "# nothing yet\n")
    assert load_checks([tmp_path]) == LoadedChecks(checks=(), problems=())


def test_each_folder_gets_its_own_helper_module(tmp_path: Path) -> None:
    for team in ("red", "blue"):
        write(tmp_path / team / "helpers.py", f'TAG = "{team}"\n')
        write(tmp_path / team / "check.py", GOOD_PY.replace("browse", f"browse_{team}"))
    loaded = load_checks([tmp_path])
    assert loaded.problems == ()
    assert {c.name: c.tags for c in loaded.checks} == {
        "browse_blue": ("blue",),
        "browse_red": ("red",),
    }


def test_a_helper_that_shadows_a_loaded_module_is_still_the_local_one(tmp_path: Path) -> None:
    # `textwrap` is already imported (this very test uses it): the file beside wins.
    write(tmp_path / "textwrap.py", 'TAG = "local"\n')
    write(tmp_path / "check.py", GOOD_PY.replace("from helpers import", "from textwrap import"))
    loaded = load_checks([tmp_path])
    assert loaded.problems == ()
    assert loaded.checks[0].tags == ("local",)
    assert sys.modules["textwrap"] is textwrap
    assert textwrap.dedent("  x") == "x"


def test_reloading_sees_edited_files(tmp_path: Path) -> None:
    helpers = write(tmp_path / "helpers.py", 'TAG = "v1"\n')
    write(tmp_path / "check.py", GOOD_PY)
    assert load_checks([tmp_path]).checks[0].tags == ("v1",)
    helpers.write_text('TAG = "v2-longer"\n', encoding="utf-8")
    assert load_checks([tmp_path]).checks[0].tags == ("v2-longer",)


def test_problems_in_an_imported_helper_point_at_the_import(tmp_path: Path) -> None:
    write(tmp_path / "a" / "helpers.py", "def (\n")
    write(tmp_path / "a" / "check.py", "# comment\n" + textwrap.dedent(GOOD_PY))
    write(tmp_path / "b" / "helpers.py", "x = 1\nraise ValueError('no config')\n")
    write(tmp_path / "b" / "check.py", textwrap.dedent(GOOD_PY))
    problems = {
        f"{Path(p.path).parent.name}/{Path(p.path).name}": p
        for p in load_checks([tmp_path]).problems
    }
    # The helpers are files of the folder too, so they are loaded (and reported) themselves.
    assert sorted(problems) == ["a/check.py", "a/helpers.py", "b/check.py", "b/helpers.py"]
    assert problems["a/helpers.py"].line == 1
    assert problems["b/helpers.py"].line == 2
    in_a, in_b = problems["a/check.py"], problems["b/check.py"]
    assert in_a.line == 3
    assert f"syntax error in {tmp_path / 'a' / 'helpers.py'}:1" in in_a.message
    assert in_b.line == 2
    assert in_b.message.startswith("ValueError at import: no config (raised at ")
    assert in_b.message.endswith(f"{tmp_path / 'b' / 'helpers.py'}:2)")


def test_a_check_file_that_exits_or_declares_badly_does_not_stop_loading(tmp_path: Path) -> None:
    write(tmp_path / "a_exit.py", "import sys\n\nsys.exit(3)\n")
    write(
        tmp_path / "b_sync.py",
        """\
        import synth

        @synth.check(service="shop")
        def not_async(flow):
            pass
        """,
    )
    write(
        tmp_path / "c_typo.py",
        """\
        import synth

        @synth.check(servce="shop")
        async def typo(flow):
            pass
        """,
    )
    write(tmp_path / "d_good.yaml", GOOD_YAML)
    loaded = load_checks([tmp_path])
    assert [c.name for c in loaded.checks] == ["health"]
    assert [(Path(p.path).name, p.line) for p in loaded.problems] == [
        ("a_exit.py", 3),
        ("b_sync.py", 3),
        ("c_typo.py", 3),
    ]
    assert loaded.problems[0].message == "SystemExit at import: 3"
    assert "must be declared with 'async def'" in loaded.problems[1].message
    assert "unexpected keyword argument 'servce'" in loaded.problems[2].message


def test_a_half_imported_file_declares_nothing(tmp_path: Path) -> None:
    write(
        tmp_path / "partial.py",
        """\
        import synth

        @synth.check(service="shop")
        async def first(flow):
            pass

        raise RuntimeError("boom")
        """,
    )
    loaded = load_checks([tmp_path])
    assert loaded.checks == ()
    assert [(p.line, p.message) for p in loaded.problems] == [(7, "RuntimeError at import: boom")]


def test_the_repository_examples_load_cleanly() -> None:
    examples = Path(__file__).resolve().parents[2] / "checks"
    loaded = load_checks([examples])
    assert loaded.problems == ()
    assert {c.kind for c in loaded.checks} == {"python", "yaml"}


def test_a_run_process_share_loads_only_its_yaml_checks(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "code.py").write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path

            import synth

            Path({str(marker)!r}).write_text("ran")

            @synth.check(service="shop")
            async def from_code(flow):
                pass
            """
        ),
        encoding="utf-8",
    )
    items = "".join(
        f"\n  - {{name: y{i}, service: shop, steps: [{{name: s, request: {{path: /}}}}]}}"
        for i in range(6)
    )
    (tmp_path / "many.yaml").write_text("checks:" + items + "\n", encoding="utf-8")

    everything = load_checks([tmp_path])
    assert {c.name for c in everything.checks} == {"from_code", *(f"y{i}" for i in range(6))}
    marker.unlink()

    share = load_checks([tmp_path], yaml_only=True, keep=lambda name: name in {"y1", "y4"})
    assert [c.name for c in share.checks] == ["y1", "y4"]
    assert not share.problems
    assert not marker.exists()  # the Python file's code did not run
