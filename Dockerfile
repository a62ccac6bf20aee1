# oxidicom: the DICOM receiver of ChRIS. Build: docker build -t oxidicom .
# Python 3.11, the version CI tests (3.12 and 3.13 install too: every dependency has wheels).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build stage: every wheel, ours (with its compiled receive path) and our dependencies' --
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY docker/build-tools.sh ./docker/
RUN sh docker/build-tools.sh
COPY pyproject.toml setup.py README.md ./
COPY oxidicom ./oxidicom
COPY docker/build-wheels.sh ./docker/
RUN sh docker/build-wheels.sh /wheels .

# -- final stage: a virtual environment installed offline from those wheels ----------------
FROM ${PYTHON_IMAGE}
ENV PIP_NO_CACHE_DIR=1
COPY --from=build /wheels /wheels
COPY docker/install.sh /tmp/install.sh
RUN sh /tmp/install.sh /wheels /opt/oxidicom \
    && rm -rf /wheels /tmp/install.sh \
    && groupadd --system --gid 10001 oxidicom \
    && useradd --system --uid 10001 --gid oxidicom --home-dir /data --no-create-home oxidicom \
    && mkdir -p /data/files /var/lib/oxidicom \
    && chown -R oxidicom:oxidicom /data \
    && chmod 1777 /var/lib/oxidicom

# The outbox lives apart from /data: CUBE's compose file mounts its storage on /data itself
# (OXIDICOM_FILES_ROOT=/data), and the outbox must not be inside the files root. Its folder
# is writable by any uid (sticky, as /tmp), since CUBE runs the container as ${UID}:${GID};
# the outbox's own files are its owner's alone (0600). The volume keeps it across restarts
# and re-creations when nothing else is mounted there.
ENV PATH=/opt/oxidicom/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    OXIDICOM_FILES_ROOT=/data/files \
    OXIDICOM_OUTBOX_DIR=/var/lib/oxidicom/outbox \
    OXIDICOM_LISTENER_PORT=11111
USER 10001:10001
WORKDIR /data
VOLUME ["/var/lib/oxidicom"]
EXPOSE 11111
# A real C-ECHO through the DICOM stack; "busy" (all association slots taken) is alive.
HEALTHCHECK --interval=30s --timeout=10s --start-period=15s --retries=3 \
    CMD ["oxidicom", "echo", "--busy-ok", "--timeout", "5"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["oxidicom"]
