# For users who build the image with a container engine. It is NOT exercised by the
# project's tests or CI, which have no Docker engine: `make image` (tools/mkimage) is
# the tested, reproducible path, and test/image checks what it builds. Keep the two
# in step: the same seven binaries, built statically with the Makefile's ldflags, in
# the same layout (upstream Multus' /usr/src/multus-cni/bin, the thin image's
# entrypoints at the root), with the same entrypoint, environment and labels.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) \
#       --build-arg COMMIT=$(git rev-parse HEAD) -t ghcr.io/polynet-cni/polynet:dev .

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=v0.0.0-dev
ARG COMMIT=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# VERSION and COMMIT are linked in explicitly, so VCS stamping is off: it fails on a
# .git folder owned by another user, and a build without .git must work too.
# /var/run is a link to ../run: the runtime hands the daemon netns paths under
# /var/run/netns. Upstream's thin image has its entrypoints at the root: here they
# are relative links to the binaries.
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -buildvcs=false \
        -ldflags "-s -w -X github.com/polynet-cni/polynet/internal/buildinfo.Version=${VERSION} -X github.com/polynet-cni/polynet/internal/buildinfo.Commit=${COMMIT}" \
        -o /rootfs/usr/src/multus-cni/bin/ \
        ./cmd/multus ./cmd/multus-shim ./cmd/multus-daemon ./cmd/install_multus ./cmd/thin_entrypoint ./cmd/passthru \
        ./cmd/multus-cert-approver \
    && chmod 0755 /rootfs/usr/src/multus-cni/bin/* \
    && mkdir -p /rootfs/etc /rootfs/run /rootfs/tmp /rootfs/var \
    && chmod 1777 /rootfs/tmp \
    && ln -s ../run /rootfs/var/run \
    && ln -s usr/src/multus-cni/bin/install_multus /rootfs/install_multus \
    && ln -s usr/src/multus-cni/bin/thin_entrypoint /rootfs/thin_entrypoint

# Nothing but our static binaries: no shell, no package manager.
FROM scratch
ARG VERSION=v0.0.0-dev
ARG COMMIT=unknown
COPY --from=build /rootfs/ /
ENV PATH=/usr/src/multus-cni/bin:/usr/bin:/bin
WORKDIR /
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.title="polynet" \
      org.opencontainers.image.source="https://github.com/polynet-cni/polynet"
ENTRYPOINT ["/thin_entrypoint"]
