# syncgate in a small image, for CI jobs that should not compile it:
#
#   docker build -t syncgate:0.1.0 .
#   docker run --rm -v "$PWD:/work" -u "$(id -u):$(id -g)" syncgate:0.1.0 syncgate gate
#
# Build stage: the release binary from the locked dependencies.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
COPY src src
COPY benches benches
RUN cargo build --release --locked --bin syncgate \
 && strip target/release/syncgate \
 && ./target/release/syncgate --version

# Runtime stage: the binary, CA roots for HTTPS orgs and registries, a shell for CI scripts,
# and a user without privileges.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --create-home --home-dir /home/syncgate syncgate
COPY --from=build /src/target/release/syncgate /usr/local/bin/syncgate
USER syncgate
WORKDIR /work
# No ENTRYPOINT: CI systems (GitLab `image:`, `docker run … sh -c`) run their own shell.
CMD ["syncgate", "--help"]
