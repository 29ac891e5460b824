# portcullis in a container: a static binary on distroless, running as nonroot.
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" \
#     --build-arg COMMIT="$(git rev-parse --short=12 HEAD)" --build-arg DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)" -t portcullis .
#   docker run --rm -p 4000:4000 -p 8080:8080 \
#     -v /etc/portcullis:/etc/portcullis:ro -v portcullis-state:/var/lib/portcullis \
#     portcullis
#
# The config (examples/portcullis.yaml) is read from /etc/portcullis; it must
# listen on 0.0.0.0 and keep its state (store.path, audit.file) under
# /var/lib/portcullis, the one writable volume. See README, Operators.

# Build stage: the same build as `make build`.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
ARG DATE=
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$VERSION -X main.commit=$COMMIT -X main.date=$DATE" -o /out/portcullis ./cmd/portcullis
# The state directory, created here because the final image has no shell.
RUN mkdir -p /out/state

# Final stage: no shell, no package manager; CA certificates and tzdata only.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/portcullis /portcullis
COPY --from=build --chown=65532:65532 /out/state /var/lib/portcullis
VOLUME ["/var/lib/portcullis"]
USER nonroot
# 4000: MySQL protocol (listen.mysql); 8080: the portal, HTTP (listen.http).
EXPOSE 4000 8080
ENTRYPOINT ["/portcullis"]
CMD ["serve","--config","/etc/portcullis/portcullis.yaml"]
