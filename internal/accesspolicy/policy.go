// Package accesspolicy defines the access-policy document that the
// DossierStore reconciler renders from a store's AccessRoles and the audit
// proxy enforces: who (users, groups, service accounts) may do what (read,
// write, export) with which data categories, for which purpose, and which
// application routes touch which categories.
//
// The document is canonical: every list is sorted and the JSON encoding is
// deterministic, so the same roles give the same bytes and the same hash
// whatever order they were created in.
package accesspolicy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// Version of the document format.
const Version = 1

// ConfigMapKey is the key of the document in its ConfigMap.
const ConfigMapKey = "policy.json"

// Document is the access policy of one store.
type Document struct {
	Version            int     `json:"version"`
	Store              string  `json:"store"`
	Namespace          string  `json:"namespace"`
	ProcessingActivity string  `json:"processingActivity,omitempty"`
	Routes             []Route `json:"routes"`
	Roles              []Role  `json:"roles"`
}

// Route maps a request to the categories it touches and the action it is.
type Route struct {
	Name       string                  `json:"name"`
	Method     string                  `json:"method"`
	Path       string                  `json:"path"`
	Categories []v1alpha1.DataCategory `json:"categories"`
	Action     v1alpha1.Action         `json:"action"`
	// AllowWebSocket lets the route's requests upgrade to a WebSocket.
	AllowWebSocket bool `json:"allowWebSocket,omitempty"`
}

// Role grants categories and actions to subjects.
type Role struct {
	Name              string                  `json:"name"`
	Purpose           string                  `json:"purpose"`
	Subjects          []Subject               `json:"subjects"`
	Categories        []v1alpha1.DataCategory `json:"categories"`
	Actions           []v1alpha1.Action       `json:"actions"`
	AssignedCasesOnly bool                    `json:"assignedCasesOnly"`
	BreakGlass        bool                    `json:"breakGlass"`
}

// Subject is a user, group or service account.
type Subject struct {
	Kind      v1alpha1.SubjectKind `json:"kind"`
	Name      string               `json:"name"`
	Namespace string               `json:"namespace,omitempty"`
}

// Build assembles the canonical document of a store from the roles that may
// be enforced (the caller leaves out roles that failed their checks).
func Build(store *v1alpha1.DossierStore, roles []v1alpha1.AccessRole) Document {
	doc := Document{
		Version:   Version,
		Store:     store.Name,
		Namespace: store.Namespace,
		Routes:    []Route{},
		Roles:     make([]Role, 0, len(roles)),
	}
	if a := store.Spec.Audit; a != nil {
		doc.ProcessingActivity = a.ProcessingActivity
		for _, r := range a.Routes {
			doc.Routes = append(doc.Routes, Route{
				Name: r.Name, Method: r.Method, Path: r.Path, Categories: canonicalCategories(r.Categories), Action: r.Action,
				AllowWebSocket: r.AllowWebSocket,
			})
		}
	}
	sort.Slice(doc.Routes, func(i, j int) bool { return doc.Routes[i].Name < doc.Routes[j].Name })
	for _, r := range roles {
		role := Role{
			Name:              r.Name,
			Purpose:           r.Spec.Purpose,
			Categories:        canonicalCategories(r.Spec.Categories),
			Actions:           slices.Sorted(slices.Values(r.Spec.Actions)),
			AssignedCasesOnly: r.Spec.AssignedCasesOnly,
			BreakGlass:        r.Spec.BreakGlass != nil,
		}
		for _, s := range r.Spec.Subjects {
			role.Subjects = append(role.Subjects, Subject{Kind: s.Kind, Name: s.Name, Namespace: s.Namespace})
		}
		sort.Slice(role.Subjects, func(i, j int) bool {
			a, b := role.Subjects[i], role.Subjects[j]
			if a.Kind != b.Kind {
				return a.Kind < b.Kind
			}
			if a.Namespace != b.Namespace {
				return a.Namespace < b.Namespace
			}
			return a.Name < b.Name
		})
		doc.Roles = append(doc.Roles, role)
	}
	sort.Slice(doc.Roles, func(i, j int) bool { return doc.Roles[i].Name < doc.Roles[j].Name })
	return doc
}

// canonicalCategories orders categories as the vocabulary does.
func canonicalCategories(in []v1alpha1.DataCategory) []v1alpha1.DataCategory {
	out := make([]v1alpha1.DataCategory, 0, len(in))
	for _, c := range v1alpha1.AllDataCategories {
		if slices.Contains(in, c) {
			out = append(out, c)
		}
	}
	return out
}

// Encode returns the document's canonical bytes and their SHA-256 in hex.
func Encode(doc Document) ([]byte, string, error) {
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, "", fmt.Errorf("encode access policy: %w", err)
	}
	data = append(data, '\n')
	sum := sha256.Sum256(data)
	return data, hex.EncodeToString(sum[:]), nil
}

// Decode parses a document, refusing an unknown version.
func Decode(data []byte) (Document, error) {
	var doc Document
	if err := json.Unmarshal(data, &doc); err != nil {
		return Document{}, fmt.Errorf("decode access policy: %w", err)
	}
	if doc.Version != Version {
		return Document{}, fmt.Errorf("access policy version %d is not supported (want %d)", doc.Version, Version)
	}
	return doc, nil
}
