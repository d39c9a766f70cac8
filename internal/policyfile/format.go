// Package policyfile reads the policy documents that the operator renders
// into ConfigMaps and the serving roles enforce: the audit proxy's access
// policy and the egress gateway's egress policy. Both roles load them the
// same way:
//
//   - a Format names the kind of document and the versions this build
//     reads; Decode refuses any other version, so that a newer operator's
//     document is never half understood;
//   - Load decodes, compiles (the role's own checks: anything it could not
//     enforce exactly is refused) and hashes a document;
//   - a Source polls the mounted file, puts a new document in force only
//     when it loads, keeps the last good one otherwise, and has none in
//     force before the first one loaded: the roles then refuse every
//     request (503) and are not ready, they never decide without a policy.
package policyfile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Format is one kind of policy document.
type Format struct {
	// Name names the document in logs and errors: "access policy".
	Name string
	// MinVersion and MaxVersion are the versions this build reads; a
	// document's "version" field must be within them.
	MinVersion, MaxVersion int
}

// Encode returns doc's canonical bytes (indented JSON with a final newline:
// the same document gives the same bytes) and their Hash.
func (f Format) Encode(doc any) ([]byte, string, error) {
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, "", fmt.Errorf("encode %s: %w", f.Name, err)
	}
	data = append(data, '\n')
	return data, Hash(data), nil
}

// Decode parses data into doc (a pointer), refusing a document whose
// version this build does not read.
func (f Format) Decode(data []byte, doc any) error {
	var v struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("decode %s: %w", f.Name, err)
	}
	if v.Version < f.MinVersion || v.Version > f.MaxVersion {
		if f.MinVersion == f.MaxVersion {
			return fmt.Errorf("%s version %d is not supported (want %d)", f.Name, v.Version, f.MaxVersion)
		}
		return fmt.Errorf("%s version %d is not supported (want %d to %d)", f.Name, v.Version, f.MinVersion, f.MaxVersion)
	}
	if err := json.Unmarshal(data, doc); err != nil {
		return fmt.Errorf("decode %s: %w", f.Name, err)
	}
	return nil
}

// Hash is the hex SHA-256 of a document's bytes, by which documents are
// compared and named in logs and annotations.
func Hash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Load makes a document ready to enforce: decode parses it (checking its
// version), compile checks and compiles it, and hash is Hash(data).
func Load[D, T any](data []byte, decode func([]byte) (D, error), compile func(D) (*T, error)) (p *T, hash string, err error) {
	doc, err := decode(data)
	if err != nil {
		return nil, "", err
	}
	if p, err = compile(doc); err != nil {
		return nil, "", err
	}
	return p, Hash(data), nil
}
