# Multi-stage build of the dossierguard binary into a distroless, non-root,
# shell-less image. `make docker-build` uses it; `make image` builds the same
# binary into an OCI image without a Docker engine.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -buildvcs=false \
      -ldflags "-s -w -buildid= -X main.version=${VERSION}" \
      -o /out/dossierguard ./cmd/dossierguard

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dossierguard /dossierguard
USER 65532:65532
ENTRYPOINT ["/dossierguard"]
CMD ["manager"]
