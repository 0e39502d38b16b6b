"""synth's own exceptions. Each derives from `SynthError`, so a caller can tell synth's
errors from bugs; those that are also a ValueError or LookupError keep that base.

    SynthError
    ├── ConfigError             the configuration cannot be used (synth.config)
    ├── UsageError              a command line or its files are wrong: exit 2 (synth.cli)
    ├── CheckDefinitionError    a check is declared wrongly, with where (synth.checks.api)
    ├── CheckFailure            a check's step failed: expectation, flow.fail() (checks.failures)
    ├── TemplateSyntaxError     a malformed `${...}` in a check (synth.checks.templating)
    ├── PathNotFound            a JSON path not in the document (synth.checks.jsonpath)
    ├── KeyProblem              one key of a YAML check is wrong (synth.checks.yaml.schema)
    ├── Unsupported             a YAML feature left to the composer, internal (checks.yaml.events)
    ├── BrowserUnavailable      Playwright or Chromium is missing or will not start (browser.engine)
    ├── ProbeError              a network failure, classified (synth.probes.errors)
    │   (DnsResolutionError     a name did not resolve: an httpcore2.ConnectError too)
    ├── StoreError              the store failed (synth.store.records)
    │   ├── StoreRefused        the store refused the data itself
    │   ├── StoreInUse          another agent holds the SQLite store (store.single_agent)
    │   └── IdempotencyKeyConflict  another agent stored the same deploy id first
    ├── BaselineError           baselines could not be sent or read (synth.baseline.client)
    ├── PushError               the Pushgateway refused or could not be reached (outputs.push)
    ├── AuthError               a request's credentials were refused (synth.agent.auth)
    ├── BadJson                 a request body cannot be accepted: 400/422 (agent.json_body)
    ├── DeployRefused           nothing will verify a deploy: 404/422 (synth.agent.deploys)
    ├── SilenceCommandError     `synth silence` was refused or misused: exit 2 (silence_command)
    ├── CheckFailed             a check item failed, for pytest's report (synth.pytest_plugin)
    └── CheckLoadError          a check file did not load, for pytest (synth.pytest_plugin)

`FlowAborted` (synth.checks.failures) is control flow, a BaseException, not an error.
"""

from __future__ import annotations


class SynthError(Exception):
    """Base of every exception synth raises on purpose."""
