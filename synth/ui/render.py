"""The pages' Jinja2 environment: templates from the package, HTML autoescaped, the
formatting helpers as filters."""

from __future__ import annotations

from typing import Any

import jinja2

from synth import __version__
from synth.ui import format as fmt

SECTIONS = {"deploys.html": "deploys", "deploy.html": "deploys", "caught.html": "caught"}
SECTIONS["silences.html"] = "silences"


class Pages:
    """Renders the templates in synth/ui/templates."""

    def __init__(self) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.PackageLoader("synth.ui", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters.update(
            seconds=fmt.seconds, percent=fmt.percent, stamp=fmt.stamp, spark_line=fmt.spark_line
        )
        self._env.globals.update(
            ago=fmt.ago,
            query=fmt.query,
            path=fmt.path,
            spark=fmt.spark,
            spark_marks=fmt.spark_marks,
            phase_bar=fmt.phase_bar,
            navigation_bar=fmt.navigation_bar,
            step_facts=fmt.step_facts,
            duration_chart=fmt.duration_chart,
            version=__version__,
        )

    def render(self, template: str, **context: Any) -> str:
        here = SECTIONS.get(template, "overview")
        return self._env.get_template(template).render(here=here, **context)
