# yadtq worker image (built-in handlers).
# Build from the repository root: docker build -f deploy/worker.Dockerfile -t yadtq-worker .

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

# Same cache ids as deploy/gateway.Dockerfile, so shared dependencies compile once.
RUN --mount=type=cache,id=yadtq-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=yadtq-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=yadtq-target,target=/src/target,sharing=locked \
    cargo build --release --locked -p yadtq-worker \
 && install -D -m 0755 target/release/yadtq-worker /out/yadtq-worker

# ---- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 yadtq \
 && useradd --system --uid 10001 --gid yadtq --no-create-home --shell /usr/sbin/nologin yadtq

COPY --from=builder /out/yadtq-worker /usr/local/bin/yadtq-worker

ENV RUST_LOG=info,rdkafka=warn,sqlx=warn
# DATABASE_URL has no default and must be set; KAFKA_BOOTSTRAP defaults to 127.0.0.1:9092.

USER yadtq:yadtq
# The worker handles SIGTERM itself: it stops taking records and waits up to
# YADTQ_SHUTDOWN_GRACE (30 s) for running tasks. Give `docker stop` more time than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["yadtq-worker"]
