# poortwachter in a container: a multi-stage build and a small, non-root final image.
#
#   docker build -t poortwachter .
#   docker run --read-only -v pw-data:/var/lib/poortwachter -p 8080:8080 \
#       -e POORTWACHTER_UPSTREAM=http://fhir.internal:8090/fhir poortwachter
#
# The root file system can be read-only: the only place poortwachter writes is its data dir
# (the volume). The policies shipped with the binary are in /etc/poortwachter/policies; mount
# your own over it. The internal listener stays on the container's loopback (the HEALTHCHECK
# reaches it there); see README "Packaging" to expose it.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin poortwachter

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/poortwachter \
        --shell /usr/sbin/nologin poortwachter \
 && install -d -o poortwachter -g poortwachter -m 0700 /var/lib/poortwachter
COPY --from=build /src/target/release/poortwachter /usr/local/bin/poortwachter
COPY policies /etc/poortwachter/policies
ENV POORTWACHTER_DATA_DIR=/var/lib/poortwachter \
    POORTWACHTER_POLICIES_DIR=/etc/poortwachter/policies \
    POORTWACHTER_PUBLIC_ADDR=0.0.0.0:8080 \
    POORTWACHTER_INTERNAL_ADDR=127.0.0.1:8081
VOLUME /var/lib/poortwachter
WORKDIR /var/lib/poortwachter
USER poortwachter:poortwachter
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=6s --start-period=10s --retries=3 \
    CMD ["poortwachter", "healthcheck"]
ENTRYPOINT ["poortwachter"]
CMD ["serve"]
