# The image `splitlab k8s job` names (docs/k8s.md):
#   docker build -t REGISTRY/splitlab:0.1.0 . && docker push REGISTRY/splitlab:0.1.0
# Built with the locked dependencies; run on distroless's cc image (glibc, libgcc and CA
# certificates for https:// targets, no shell) as its nonroot user 65532, which the Job's
# securityContext requires (runAsNonRoot, readOnlyRootFilesystem: only /tmp is written).

FROM rust:1-bookworm AS build
WORKDIR /src
# What `cargo build` reads: the manifest and lock file, the build script, the sources, the
# shipped scenarios (embedded by build.rs) and the bench targets Cargo.toml declares.
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY scenarios ./scenarios
COPY benches ./benches
RUN cargo build --release --locked \
    && install -m 0755 target/release/splitlab /splitlab

# Debian 12 (bookworm), as the build stage, so the binary's glibc matches.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /splitlab /usr/local/bin/splitlab
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["/usr/local/bin/splitlab"]
