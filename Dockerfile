# syntax=docker/dockerfile:1
# ec2guard images for users with a container engine. One build stage compiles the three binaries
# with the Makefile's flags; each final stage is distroless static:nonroot with one binary as its
# entrypoint, the same layout as `make images` (which needs no container engine; docs/install.md):
#
#   docker buildx build --platform linux/amd64,linux/arm64 --target webhook \
#     --build-arg VERSION=1.2.3 --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg BUILD_DATE=$(git log -1 --format=%cI) -t REGISTRY/webhook:1.2.3 --push .
#
# Targets: webhook, discoverer, ec2guard.
ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=unknown
ARG BUILD_DATE=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH GOAMD64=v1 GOARM64=v8.0 \
    go build -trimpath -buildvcs=false -o /out/ \
      -ldflags "-s -w -X github.com/ec2guard/ec2guard/internal/version.version=${VERSION} -X github.com/ec2guard/ec2guard/internal/version.commit=${COMMIT} -X github.com/ec2guard/ec2guard/internal/version.buildDate=${BUILD_DATE}" \
      ./cmd/webhook ./cmd/discoverer ./cmd/ec2guard

FROM gcr.io/distroless/static:nonroot AS base
ARG VERSION=dev
ARG COMMIT=unknown
ARG BUILD_DATE=unknown
LABEL org.opencontainers.image.source="https://github.com/ec2guard/ec2guard" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.licenses="NOASSERTION"
USER 65532:65532

FROM base AS discoverer
COPY --from=build /out/discoverer /usr/local/bin/discoverer
ENTRYPOINT ["/usr/local/bin/discoverer"]

FROM base AS ec2guard
COPY --from=build /out/ec2guard /usr/local/bin/ec2guard
ENTRYPOINT ["/usr/local/bin/ec2guard"]

# Last, so a build without --target gives the webhook.
FROM base AS webhook
COPY --from=build /out/webhook /usr/local/bin/webhook
ENTRYPOINT ["/usr/local/bin/webhook"]
