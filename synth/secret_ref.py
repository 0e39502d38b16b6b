"""How synth.yaml names a secret: an environment variable, a file (a Kubernetes secret
mount) or, for demos, an inline value — read when it is used, never stored elsewhere.

Its own module so that settings models outside synth.config (a playbook's webhook) can
declare secrets without importing synth.config."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr, model_validator


class SecretRef(BaseModel):
    """A secret taken from an environment variable, a file (Kubernetes secret mount) or,
    for demos, an inline value. Exactly one source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env: str | None = None
    file: Path | None = None
    value: SecretStr | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        given = [s for s in (self.env, self.file, self.value) if s is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of env, file or value")
        return self

    def resolve(self) -> SecretStr:
        """Read the secret now; raises ValueError saying which source is missing."""
        if self.value is not None:
            return self.value
        if self.env is not None:
            found = os.environ.get(self.env)
            if found is None:
                raise ValueError(f"environment variable {self.env} is not set")
            return SecretStr(found)
        assert self.file is not None
        try:
            return SecretStr(self.file.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise ValueError(f"cannot read secret file {self.file}: {exc.strerror}") from None


def secret_shorthand(value: Any) -> Any:
    # `password: ${ENV_NAME}` style shorthand is ambiguous; accept "env:NAME" and "file:/path".
    if isinstance(value, str):
        kind, sep, rest = value.partition(":")
        if sep and kind in ("env", "file"):
            return {kind: rest}
        return {"value": value}
    return value


Secret = Annotated[SecretRef, BeforeValidator(secret_shorthand)]
"""A settings field holding a secret: a SecretRef, or the string shorthands `env:NAME`,
`file:/path` and a bare value."""
