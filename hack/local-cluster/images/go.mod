// The local cluster's own tools: the pause program, a small HTTP echo server
// and an image writer. Standard library only, and a module of its own so the
// main module's `go test ./...`, `go vet ./...` and `go mod tidy` skip it.
module github.com/dossierguard/dossierguard/hack/local-cluster/images

go 1.26
