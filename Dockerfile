# syntax=docker/dockerfile:1
# Multi-stage build: a static binary (pure Go, SQLite included) in a minimal,
# non-root image. Build:  docker build -t ovos-gateway .
# Run:    docker run -p 8080:8080 -v gateway-data:/data ovos-gateway
FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so that source edits do not re-download them.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/gateway ./cmd/gateway \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/satellite ./cmd/satellite \
 && mkdir -p /out/data

# distroless/static has CA certificates and tzdata, no shell, and a nonroot
# user (uid 65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gateway /out/satellite /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
# Listen on every interface inside the container; the data dir is a volume.
ENV GATEWAY_ADDR=0.0.0.0:8080 \
    GATEWAY_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
# The image has no curl: the binary checks itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/gateway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/gateway"]
CMD ["serve"]
