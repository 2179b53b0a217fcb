# Production image: the core and every plugin, run as an unprivileged user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY plugins ./plugins
RUN pip wheel --no-cache-dir --wheel-dir /wheels . plugins/*/

FROM python:3.11-slim
RUN useradd --system --create-home --home-dir /var/lib/aktenhub --uid 10001 aktenhub
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# The example listens on 127.0.0.1; mount your own configuration (server.listen "0.0.0.0:8080", secrets
# as ${ENV} or file:/run/secrets/...) over this file to serve beyond the container.
COPY config/aktenhub.example.yaml /etc/aktenhub/aktenhub.yaml
USER aktenhub
WORKDIR /var/lib/aktenhub
VOLUME ["/var/lib/aktenhub"]
EXPOSE 8080
ENTRYPOINT ["aktenhub", "run", "-c", "/etc/aktenhub/aktenhub.yaml"]
