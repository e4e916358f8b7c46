# yadtq HTTP gateway image.
# Build from the repository root: docker build -f deploy/gateway.Dockerfile -t yadtq-gateway .

# ---- build ------------------------------------------------------------------
FROM rust:1-bookworm AS builder

# rdkafka-sys builds librdkafka from source.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      cmake build-essential libssl-dev zlib1g-dev libsasl2-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# The whole workspace (all member crates must exist for it to resolve); the
# migrations/ directory is embedded into the binary at compile time.
COPY . .

# Cache mounts keep the crate registry and compiled dependencies between builds;
# the target dir is shared with deploy/worker.Dockerfile (locked, so the two
# builds take turns instead of corrupting each other).
RUN --mount=type=cache,id=yadtq-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=yadtq-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=yadtq-target,target=/src/target,sharing=locked \
    cargo build --release --locked -p yadtq-gateway \
 && install -D -m 0755 target/release/yadtq-gateway /out/yadtq-gateway

# ---- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim

# curl is for the container healthcheck (GET /readyz).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 yadtq \
 && useradd --system --uid 10001 --gid yadtq --no-create-home --shell /usr/sbin/nologin yadtq

COPY --from=builder /out/yadtq-gateway /usr/local/bin/yadtq-gateway

# The code defaults to 127.0.0.1:8080, which is unreachable from outside a container.
ENV YADTQ_LISTEN=0.0.0.0:8080 \
    RUST_LOG=info,rdkafka=warn,sqlx=warn
# DATABASE_URL has no default and must be set; KAFKA_BOOTSTRAP defaults to 127.0.0.1:9092.

USER yadtq:yadtq
EXPOSE 8080
ENTRYPOINT ["yadtq-gateway", "serve"]
