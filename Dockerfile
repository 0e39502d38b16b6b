# synth agent image. Build: docker build -t synth:0.1.0 .
# Runs as uid 10001 with a read-only root filesystem: state (SQLite) lives on the
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

# -- runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="synth" \
      org.opencontainers.image.description="Post-deployment synthetic monitoring agent" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 synth \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /var/lib/synth --shell /usr/sbin/nologin synth \
    && mkdir -p /var/lib/synth /etc/synth/checks \
    && chown 10001:10001 /var/lib/synth
COPY --from=builder /opt/synth /opt/synth
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
USER 10001:10001
EXPOSE 8484
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8484/healthz', timeout=4)"]
ENTRYPOINT ["synth"]
CMD ["agent", "--config", "/etc/synth/synth.yaml", "--host", "0.0.0.0", "--log-format", "json"]
