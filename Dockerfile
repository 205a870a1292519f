# syntax=docker/dockerfile:1
# Multi-stage, multi-arch image of the provisioner.
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=$(git describe --tags --always) -t <repo>:<tag> .
# The build stage runs `make build` (the same command as a local build) for the target
# architecture, cross-compiling on the build host's platform (CGO is off, so no emulation).
ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/root/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS make build GOARCH=$TARGETARCH VERSION=$VERSION

# distroless/static: no shell, no package manager, CA certificates and /etc/passwd only.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/nfs-subdir-provisioner /nfs-subdir-provisioner
# 65532 = "nonroot" in the base image; numeric so runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/nfs-subdir-provisioner"]
