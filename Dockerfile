# flowfleet: one image, every process. `docker run IMAGE api|worker|migrate|llm-sim`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin flowfleet
WORKDIR /app

# Dependencies in their own layer, from the lock file: rebuilt only when the lock changes,
# not on every source edit. A lock older than pyproject.toml stops the build. EXTRAS adds
# optional groups at the locked versions, e.g. --build-arg EXTRAS=otel.
ARG EXTRAS=""
COPY pyproject.toml deploy/docker/requirements.py ./
COPY requirements/ ./requirements/
RUN python requirements/lock.py --check \
    && pip install -r requirements/main.txt \
    && python requirements.py > /tmp/extras.txt \
    && { [ ! -s /tmp/extras.txt ] || pip install -c requirements/dev.txt -r /tmp/extras.txt; } \
    && rm /tmp/extras.txt requirements.py

# The source, owned by root: the service user writes only var/. Run from /app (PYTHONPATH).
COPY . .
RUN mkdir -p /app/var && chown flowfleet:flowfleet /app/var

USER flowfleet
EXPOSE 8000 8001 9100
ENTRYPOINT ["python", "-m", "flowfleet"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
