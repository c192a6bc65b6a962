FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN useradd --create-home --uid 10001 gateway
COPY pyproject.toml constraints.txt README.md alembic.ini ./
COPY src ./src
COPY migrations ./migrations
RUN pip install -c constraints.txt -e . && chown -R gateway /app
USER gateway
EXPOSE 8000 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/live').status != 200)"
ENTRYPOINT ["gateway"]
CMD ["api"]
