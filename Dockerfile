# synth agent image, two targets:
#   docker build -t synth:0.1.0 .                                    the default (last stage)
#   docker build --target browser -t synth:0.1.0-browser .           + Playwright and Chromium
# Both run as uid 10001 with a read-only root filesystem: state (SQLite) lives on the
# /var/lib/synth volume, temporary files on a writable /tmp mount.
#
# The base is pinned by version tag and by the digest of its multi-architecture index;
# bump both together (e.g. with Renovate or Dependabot).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

# -- builder: the wheel, and a virtualenv with it and its dependencies -----------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY synth ./synth
RUN python -m pip wheel --no-deps --wheel-dir /dist . \
    && python -m venv /opt/synth \
    && /opt/synth/bin/python -m pip install /dist/synth-*.whl \
    && /opt/synth/bin/python -m compileall -q /opt/synth/lib

# -- builder-browser: the same virtualenv plus the `browser` extra (Playwright's Python
#    package; it bundles the Node.js driver, never a browser: no `playwright install`) -------
FROM builder AS builder-browser
RUN wheel="$(echo /dist/synth-*.whl)" \
    && /opt/synth/bin/python -m pip install "${wheel}[browser]" \
    && /opt/synth/bin/python -m compileall -q /opt/synth/lib

# -- base: what both runtime targets share ---------------------------------------------------
FROM ${PYTHON_IMAGE} AS base
LABEL org.opencontainers.image.title="synth" \
      org.opencontainers.image.description="Post-deployment synthetic monitoring agent" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 synth \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /var/lib/synth --shell /usr/sbin/nologin synth \
    && mkdir -p /var/lib/synth /etc/synth/checks \
    && chown 10001:10001 /var/lib/synth
# Bytecode was compiled at build time; nothing is written next to the code at run time.
# HOME and TMPDIR point at writable mounts; the default SQLite store (relative
# `synth.db`) lands in the working directory, the volume.
ENV PATH=/opt/synth/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/synth \
    TMPDIR=/tmp
WORKDIR /var/lib/synth
VOLUME ["/var/lib/synth"]
EXPOSE 8484
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8484/healthz', timeout=4)"]
ENTRYPOINT ["synth"]
CMD ["agent", "--config", "/etc/synth/synth.yaml", "--host", "0.0.0.0", "--log-format", "json"]

# -- browser: `docker build --target browser` ------------------------------------------------
# Debian's Chromium at /usr/bin/chromium (browser.executable's default), driven by
# Playwright; fonts-liberation (what chromium-common recommends) so screenshots have text;
# libatomic1 for the Node.js binary Playwright's package runs as its driver (without it
# Playwright fails at start: "Connection closed while reading from the driver").
# Not version-pinned (DL3008): Chromium gets a security release every week or two and
# bookworm-security keeps only the newest, so a pin would stop building within weeks;
# the base digest pins everything else, rebuild the image to pick up Chromium fixes.
# At run time Chromium writes its profile and shared memory (synth passes
# --disable-dev-shm-usage) under TMPDIR=/tmp, caches under HOME: both writable mounts.
# Sandbox: Playwright launches Chromium with --no-sandbox unless asked for its sandbox
# (chromium_sandbox: synth's browser.sandbox, default off), so it starts as uid 10001 under the
# default seccomp profile, no capabilities, no privilege escalation. Chromium's sandbox
# would need user namespaces, which Docker's default seccomp profile (and containerd's
# RuntimeDefault, derived from it) refuses without CAP_SYS_ADMIN: see README "Browser image".
FROM base AS browser
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium fonts-liberation libatomic1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder-browser /opt/synth /opt/synth
LABEL org.opencontainers.image.description="Post-deployment synthetic monitoring agent, with Playwright and Chromium for browser checks"
USER 10001:10001

# -- default: the small image without a browser (the last stage: what a plain build makes).
# With BuildKit a plain build skips the browser stages; the legacy builder builds them too.
FROM base AS default
COPY --from=builder /opt/synth /opt/synth
USER 10001:10001
