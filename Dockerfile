# syntax=docker/dockerfile:1
# Build stage: compiles the release binary.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin aduan

# Runtime stage: the binary, its default configuration and schema, a non-root user.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/aduan --create-home aduan
COPY --from=build /src/target/release/aduan /usr/local/bin/aduan
COPY config/ /etc/aduan/
COPY schema/ /usr/share/aduan/schema/
USER aduan
WORKDIR /var/lib/aduan
ENV ADUAN_CONFIG=/etc/aduan/aduan.toml
# HTTP webhooks and APIs; SMTP intake.
EXPOSE 8080 2525
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/aduan"]
CMD ["serve"]
