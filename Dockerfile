# flowfleet: one image, every process. `docker run IMAGE api|worker|migrate|llm-sim`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin flowfleet
WORKDIR /app

# Dependencies in their own layer: rebuilt only when pyproject.toml changes, not on every
# source edit. EXTRAS adds optional groups, e.g. --build-arg EXTRAS=otel.
ARG EXTRAS=""
COPY pyproject.toml deploy/docker/requirements.py ./
RUN python requirements.py > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt requirements.py

# The source, owned by root: the service user writes only var/. Run from /app (PYTHONPATH).
COPY . .
RUN mkdir -p /app/var && chown flowfleet:flowfleet /app/var

USER flowfleet
EXPOSE 8000 8001 9100
ENTRYPOINT ["python", "-m", "flowfleet"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
