# The worker image: `cointoss exec --` picks OLD or NEW Redis, then becomes the worker (same PID).
# Build: docker build -t cointoss-worker .   Run: docker run -e MIGRATION_NEW_REDIS_URL=... cointoss-worker

# Any Debian-based image with python3, its venv module and useradd will do (the tests build on a
# debootstrapped bookworm): docker build --build-arg BASE_IMAGE=... .  Both stages use it because
# the virtualenv points at the base's own interpreter.
ARG BASE_IMAGE=python:3.12-slim

# --- build stage: a virtualenv with cointoss, worker_app and hiredis; no compiler reaches the image.
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/cointoss
WORKDIR /src
COPY pyproject.toml README.md ./
COPY supervisor/ supervisor/
COPY worker_app/ worker_app/
# redis[hiredis] is a runtime dependency; fail the build if the C parser did not install.
RUN /opt/cointoss/bin/pip install --no-cache-dir . \
    && /opt/cointoss/bin/python -c "import hiredis, supervisor, worker_app"

# --- runtime stage: the same base, the virtualenv, and an unprivileged user.
FROM ${BASE_IMAGE}
RUN groupadd --system --gid 10001 cointoss \
    && useradd --system --uid 10001 --gid cointoss --no-create-home --shell /usr/sbin/nologin cointoss
COPY --from=build /opt/cointoss /opt/cointoss
ENV PATH=/opt/cointoss/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MIGRATION_LOG_FORMAT=json
USER 10001:10001
# Sidekiq and worker_app stop gracefully on TERM; after exec the worker itself receives it.
STOPSIGNAL SIGTERM
ENTRYPOINT ["cointoss", "exec", "--"]
CMD ["python", "-m", "worker_app"]
