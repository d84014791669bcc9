# The node binary in an image with nothing else: a static Go binary
# (CGO off, time zones embedded), CA roots for TLS to Temporal, Kafka and
# Postgres, no shell, run as an unprivileged user.
#
#   docker build -t ghcr.io/theprotocol-dev/theprotocol:0.1.0 --build-arg VERSION=0.1.0 .
#
# deploy/compose.yaml runs it (`serve`, `migrate`, `admin`, `audit` are the
# commands an operator uses). The build command below is the one
# `go test ./deploy` runs, so a change that breaks a static build fails
# there, where Docker is not needed.

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -tags timetzdata -ldflags "-s -w -X github.com/theprotocol-dev/theprotocol/node.Version=${VERSION}" -o /out/theprotocol ./cmd/theprotocol
# Directories the node writes (its keys, the frame's event trust keys),
# owned by the run-time user so named volumes mounted there inherit it.
RUN mkdir -p /out/data /out/trust /out/tmp

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/theprotocol /theprotocol
COPY --from=build --chown=65532:65532 /out/data /var/lib/theprotocol
COPY --from=build --chown=65532:65532 /out/trust /var/lib/theprotocol-trust
COPY --from=build --chown=65532:65532 /out/tmp /tmp
USER 65532:65532
ENV THEPROTOCOL_DATA_DIR=/var/lib/theprotocol THEPROTOCOL_LOG_FORMAT=json
ENTRYPOINT ["/theprotocol"]
CMD ["serve"]
