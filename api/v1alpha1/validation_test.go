package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/dossierguard/dossierguard/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

const validationNamespace = "validation"

// Minimal valid objects; each invalid case breaks one rule of one of them.
var bases = map[string]string{
	"DossierStore": `
apiVersion: privacy.dossierguard.io/v1alpha1
kind: DossierStore
spec:
  service: NeighbourhoodTeam
  organisation: Gemeente Voorbeeldstad
  dataCategories: [identity, contact, request]
  workload:
    selector: {matchLabels: {app: dossier}}
    serviceAccountName: dossier
    appPort: 8080
  storage: {storageClassName: encrypted, size: 10Gi}
  audit:
    routes:
      - {name: read, method: GET, path: "/api/dossiers/{dossier}", categories: [identity], action: read}
`,
	"AccessRole": `
apiVersion: privacy.dossierguard.io/v1alpha1
kind: AccessRole
spec:
  storeRef: {name: store}
  subjects: [{kind: Group, name: coaches}]
  categories: [identity, contact]
  actions: [read]
  purpose: Ondersteuning
`,
	"SharingAgreement": `
apiVersion: privacy.dossierguard.io/v1alpha1
kind: SharingAgreement
spec:
  storeRef: {name: store}
  partner: {type: School, name: De Regenboog, cidrs: [192.0.2.0/28], ports: [{port: 443}]}
  legalBasis: Consent
  consent: {reference: TOE-1}
  categories: [request]
  purpose: Afstemming met school
  validFrom: "2026-09-01T00:00:00Z"
  validUntil: "2027-07-01T00:00:00Z"
`,
	"RetentionPolicy": `
apiVersion: privacy.dossierguard.io/v1alpha1
kind: RetentionPolicy
spec:
  storeRef: {name: store}
  database: {credentialsSecretName: db}
  schedule: "0 3 * * *"
  rules:
    - name: dossiers
      table: dossiers
      clock: {event: LastContact, column: last_contact_at}
      period: P5Y
`,
	"DataSubjectRequest": `
apiVersion: privacy.dossierguard.io/v1alpha1
kind: DataSubjectRequest
spec:
  storeRef: {name: store}
  type: Access
  dossier: 3f771686cc88a4b4235dec14b0b3689bb64ee8ceb4ce1c32f243b62b2a3dbb7f
  receivedAt: "2026-10-05T09:30:00Z"
  requester: {relation: Self}
  subject: {ageBand: Adult}
  handler: privacy-officer
`,
	"ProcessingActivity": `
apiVersion: privacy.dossierguard.io/v1alpha1
kind: ProcessingActivity
spec:
  displayName: Ondersteuning
  purpose: Ondersteuning van inwoners bij wonen, werk en opvoeding
  legalBasis: PublicTask
  legalReference: Wmo 2015 art. 2.3.2
  service: NeighbourhoodTeam
  dataSubjectCategories: [inwoners, ouders]
  dataCategories: [identity, contact, request]
  retention:
    policyRef: {name: bewaartermijn}
    description: 5 jaar na het laatste contact
  controller: Gemeente Voorbeeldstad
  dataProtectionOfficer: {name: Functionaris gegevensbescherming, email: fg@voorbeeldstad.nl}
`,
}

// change edits a base object's spec.
type change func(spec map[string]any)

// tlsRefs are the partner TLS Secrets of an outbound agreement.
var tlsRefs = map[string]any{"caBundle": map[string]any{"name": "vi-ca"}, "clientCertificateSecretName": "vi-client"}

func outboundRoute(name, path string, categories ...any) map[string]any {
	return map[string]any{"name": name, "method": "POST", "path": path, "categories": categories}
}

// outbound makes the base agreement send to its partner through the
// egress gateway.
var outbound = all(set("partner.endpoint", "https://vi.example.nl/api"), set("partner.tls", tlsRefs),
	set("outboundRoutes", []any{outboundRoute("signal", "/signalen/{dossier}", "request")}))

func set(path string, value any) change {
	return func(spec map[string]any) {
		parts := strings.Split(path, ".")
		m := spec
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = value
	}
}

func del(path string) change {
	return func(spec map[string]any) {
		parts := strings.Split(path, ".")
		m := spec
		for _, p := range parts[:len(parts)-1] {
			m = m[p].(map[string]any)
		}
		delete(m, parts[len(parts)-1])
	}
}

func rule(index int, field string, value any) change {
	return func(spec map[string]any) {
		spec["rules"].([]any)[index].(map[string]any)[field] = value
	}
}

func all(changes ...change) change {
	return func(spec map[string]any) {
		for _, c := range changes {
			c(spec)
		}
	}
}

func newObject(t *testing.T, kind, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(bases[kind]), &u.Object); err != nil {
		t.Fatalf("base %s: %v", kind, err)
	}
	u.SetNamespace(validationNamespace)
	u.SetName(name)
	return u
}

func spec(u *unstructured.Unstructured) map[string]any { return u.Object["spec"].(map[string]any) }

func TestValidObjectsAccepted(t *testing.T) {
	ctx := context.Background()
	ensureNamespace(t, validationNamespace)
	for kind := range bases {
		u := newObject(t, kind, "valid-"+strings.ToLower(kind))
		if err := env.Client.Create(ctx, u); err != nil {
			t.Errorf("%s: valid base rejected: %v", kind, err)
		}
	}
}

// TestSharingVariantsAccepted: what the sharing rules allow is accepted,
// with its defaults.
func TestSharingVariantsAccepted(t *testing.T) {
	ctx := context.Background()
	ensureNamespace(t, validationNamespace)
	cases := []struct {
		name   string
		kind   string
		change change
		check  func(spec map[string]any) error
	}{
		{"ingress with a client subject", "SharingAgreement",
			all(set("direction", "Ingress"), set("partner.subjects", []any{map[string]any{"kind": "Client", "name": "regenboog-lvs"}})),
			func(spec map[string]any) error {
				if m := spec["consent"].(map[string]any)["mode"]; m != "Agreement" {
					return fmt.Errorf("consent.mode defaulted to %v, want Agreement", m)
				}
				return nil
			}},
		{"per-dossier consent without reference", "SharingAgreement",
			all(set("direction", "Both"), set("partner.subjects", []any{map[string]any{"kind": "ServiceAccount", "name": "lvs", "namespace": "school"}}),
				set("consent", map[string]any{"mode": "PerDossier"})), nil},
		{"outbound with endpoint, TLS and routes", "SharingAgreement", outbound,
			func(spec map[string]any) error {
				if k := spec["partner"].(map[string]any)["tls"].(map[string]any)["caBundle"].(map[string]any)["key"]; k != "ca.crt" {
					return fmt.Errorf("partner.tls.caBundle.key defaulted to %v, want ca.crt", k)
				}
				return nil
			}},
		{"outbound on a Both agreement, endpoint with a port", "SharingAgreement",
			all(outbound, set("partner.endpoint", "https://10.1.2.3:8443"), set("direction", "Both"),
				set("partner.subjects", []any{map[string]any{"kind": "Client", "name": "vi"}})), nil},
		{"withdrawal recorded in the past", "SharingAgreement",
			all(set("consent.givenAt", "2026-09-01T00:00:00Z"), set("consent.withdrawnAt", "2026-10-01T00:00:00Z")), nil},
		{"inspectorate with a legal reference", "SharingAgreement",
			all(set("partner.type", "Inspectorate"), set("legalBasis", "LegalObligation"), del("consent"),
				set("legalReference", "Jeugdwet art. 4.1.8"), set("categories", []any{"reports", "plan"})), nil},
		{"consent source with default bound", "DossierStore",
			set("audit.consentURL", "https://cases.example/api/consent/{dossier}?agreement={agreement}&partner={partner}"),
			func(spec map[string]any) error {
				if ttl := spec["audit"].(map[string]any)["consentCacheTTL"]; ttl != "5s" {
					return fmt.Errorf("audit.consentCacheTTL defaulted to %v, want 5s", ttl)
				}
				return nil
			}},
		{"consent cache at its maximum", "DossierStore", set("audit.consentCacheTTL", "60s"), nil},
		{"signing key rotated weekly", "DossierStore", set("audit.signingKeyRotation", "P7D"), nil},
		{"signing key rotated every 90 days", "DossierStore", set("audit.signingKeyRotation", "P90D"), nil},
		{"signing key rotated every five years", "DossierStore", set("audit.signingKeyRotation", "P5Y"), nil},
		{"signing key rotated every 60 months", "DossierStore", set("audit.signingKeyRotation", "P60M"), nil},
		{"response period of one month", "DossierStore", set("dataSubjectRights.responsePeriod", "P1M"), nil},
		{"response period of 28 days", "DossierStore", set("dataSubjectRights.responsePeriod", "P28D"), nil},
		{"parent of a 13-year-old with co-decision", "DataSubjectRequest",
			all(set("requester.relation", "Parent"), set("subject.ageBand", "From12To15"), set("coDecisionReference", "GESPREK-1")), nil},
		{"parent of a 16-year-old with consent", "DataSubjectRequest",
			all(set("requester.relation", "Parent"), set("subject.ageBand", "From16To17"), set("consentReference", "TOE-1")), nil},
		{"parent of a child under 12", "DataSubjectRequest",
			all(set("requester.relation", "Parent"), set("subject.ageBand", "Under12")), nil},
		{"refusal with a ground and an explanation", "DataSubjectRequest",
			set("decision", map[string]any{"outcome": "Refused", "decidedAt": "2026-10-10T10:00:00Z",
				"refusalGrounds": []any{"InterestOfTheChild"}, "explanation": "Inzage zou de veiligheid van het kind schaden."}), nil},
		{"restriction of categories, exempting a role, ended", "DataSubjectRequest",
			all(set("type", "Restriction"), set("restriction", map[string]any{"categories": []any{"finance"}, "exemptRoles": []any{"privacy-officer"}}),
				set("decision", map[string]any{"outcome": "Granted", "decidedAt": "2026-10-06T10:00:00Z"}), set("endedAt", "2026-10-20T10:00:00Z")), nil},
		{"objection to a processing activity", "DataSubjectRequest",
			all(set("type", "Objection"), set("objection", map[string]any{"purpose": "cliëntervaringsonderzoek", "activities": []any{"clientervaringsonderzoek"}})), nil},
		{"objection to routes and activities", "DataSubjectRequest",
			all(set("type", "Objection"), set("objection", map[string]any{"purpose": "onderzoek", "routes": []any{"survey-export"}, "activities": []any{"clientervaringsonderzoek"}})), nil},
		{"a bulk route with records, defaulted", "DossierStore",
			set("audit.routes", []any{map[string]any{"name": "survey", "method": "GET", "path": "/api/survey/addresses", "categories": []any{"identity"}, "action": "export",
				"records": map[string]any{"items": "/addresses", "dossierField": "/dossier"}}}),
			func(spec map[string]any) error {
				rec := spec["audit"].(map[string]any)["routes"].([]any)[0].(map[string]any)["records"].(map[string]any)
				if rec["format"] != "JSON" || rec["maxBodyBytes"] != int64(8388608) {
					return fmt.Errorf("records defaulted to %v, want format JSON and maxBodyBytes 8388608", rec)
				}
				return nil
			}},
		{"a top-level array of records with escaped pointers", "DossierStore",
			set("audit.routes", []any{map[string]any{"name": "list", "method": "GET", "path": "/api/dossiers", "categories": []any{"identity"}, "action": "read",
				"records": map[string]any{"format": "JSON", "items": "", "dossierField": "/meta~1ids/dossier~0id", "maxBodyBytes": int64(67108864)}}}), nil},
		{"objection to a route, extended", "DataSubjectRequest",
			all(set("type", "Objection"), set("objection", map[string]any{"purpose": "tevredenheidsonderzoek", "routes": []any{"survey-export"}}),
				set("extension", map[string]any{"months": int64(2), "reason": "Veel verzoeken tegelijk ontvangen."})), nil},
		{"retention extension with an end date, granted", "DataSubjectRequest",
			all(set("type", "RetentionExtension"), set("retentionExtension", map[string]any{"until": "2031-12-31", "reference": "BRIEF-2026-118"}),
				set("decision", map[string]any{"outcome": "Granted", "decidedAt": "2026-10-06T10:00:00Z"})), nil},
		{"retention extension ended early", "DataSubjectRequest",
			all(set("type", "RetentionExtension"), set("retentionExtension", map[string]any{"until": "2031-12-31", "reference": "BRIEF-2026-118"}),
				set("decision", map[string]any{"outcome": "Granted", "decidedAt": "2026-10-06T10:00:00Z"}), set("endedAt", "2027-01-01T10:00:00Z")), nil},
		{"erasure on a recorded date, on the day of receipt", "DataSubjectRequest",
			all(set("type", "Erasure"), set("erasure", map[string]any{"notBefore": "2026-10-05"}),
				set("decision", map[string]any{"outcome": "Granted", "decidedAt": "2026-10-06T10:00:00Z"})), nil},
		{"cap on retention extensions of ten years", "DossierStore", set("dataSubjectRights.maxRetentionExtension", "P10Y"), nil},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := newObject(t, tc.kind, fmt.Sprintf("variant-%d", i))
			tc.change(spec(u))
			if err := env.Client.Create(ctx, u); err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if tc.check != nil {
				if err := tc.check(spec(u)); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func TestInvalidManifestsRejected(t *testing.T) {
	allCategories := []any{"identity", "bsn", "contact", "request", "plan", "reports", "decisions", "health", "safety", "finance", "family"}
	cases := []struct {
		name   string
		kind   string
		change change
		// update: create the base first, then apply the change as an update.
		update bool
		want   []string
	}{
		// DossierStore
		{"unknown data category", "DossierStore", set("dataCategories", []any{"identity", "medical"}), false,
			[]string{"spec.dataCategories[1]", `Unsupported value: "medical"`, `"identity"`, `"family"`}},
		{"duplicate data category", "DossierStore", set("dataCategories", []any{"identity", "identity"}), false,
			[]string{"spec.dataCategories[1]", "Duplicate value"}},
		{"no data categories", "DossierStore", all(set("dataCategories", []any{}), del("audit")), false,
			[]string{"spec.dataCategories", "at least 1 items"}},
		{"unknown service", "DossierStore", set("service", "Daycare"), false,
			[]string{"spec.service", `Unsupported value: "Daycare"`}},
		{"empty workload selector", "DossierStore", set("workload.selector", map[string]any{}), false,
			[]string{"spec.workload.selector", "must not be empty"}},
		{"proxy port equals app port", "DossierStore", set("workload.proxyPort", int64(8080)), false,
			[]string{"spec.workload.proxyPort", "proxyPort must differ from spec.workload.appPort"}},
		{"plain HTTP without a reason", "DossierStore", set("workload.proxyTLS", map[string]any{"mode": "Disabled"}), false,
			[]string{"spec.workload.proxyTLS.disabledReason", "required (10 to 200 characters) when mode is Disabled"}},
		{"plain HTTP with a token reason", "DossierStore", set("workload.proxyTLS", map[string]any{"mode": "Disabled", "disabledReason": "mesh"}), false,
			[]string{"spec.workload.proxyTLS.disabledReason", "required (10 to 200 characters)"}},
		{"a reason without disabling TLS", "DossierStore", set("workload.proxyTLS", map[string]any{"disabledReason": "Istio mutual TLS in the mesh"}), false,
			[]string{"spec.workload.proxyTLS.disabledReason", "only allowed when mode is Disabled"}},
		{"app port out of range", "DossierStore", set("workload.appPort", int64(70000)), false,
			[]string{"spec.workload.appPort", "less than or equal to 65535"}},
		{"size not a quantity", "DossierStore", set("storage.size", "lots"), false,
			[]string{"spec.storage.size", "must be a positive quantity such as 20Gi"}},
		{"key rotation in days", "DossierStore", set("encryption.keyRotationPeriod", "90d"), false,
			[]string{"spec.encryption.keyRotationPeriod", "between 1h and 8760h"}},
		{"key rotation too short", "DossierStore", set("encryption.keyRotationPeriod", "10m"), false,
			[]string{"spec.encryption.keyRotationPeriod", "between 1h and 8760h"}},
		{"signing key rotation under a week", "DossierStore", set("audit.signingKeyRotation", "P6D"), false,
			[]string{"spec.audit.signingKeyRotation", "must be a period from P7D to P5Y"}},
		{"signing key rotation over five years", "DossierStore", set("audit.signingKeyRotation", "P6Y"), false,
			[]string{"spec.audit.signingKeyRotation", "must be a period from P7D to P5Y"}},
		{"signing key rotation over 260 weeks", "DossierStore", set("audit.signingKeyRotation", "P261W"), false,
			[]string{"spec.audit.signingKeyRotation", "must be a period from P7D to P5Y"}},
		{"signing key rotation as a duration", "DossierStore", set("audit.signingKeyRotation", "8760h"), false,
			[]string{"spec.audit.signingKeyRotation", "must be an ISO 8601 period"}},
		{"route category outside the store", "DossierStore",
			set("audit.routes", []any{map[string]any{"name": "r", "method": "GET", "path": "/x", "categories": []any{"health"}, "action": "read"}}), false,
			[]string{"spec.audit.routes: every route category must be one of spec.dataCategories"}},
		{"route path without slash", "DossierStore",
			set("audit.routes", []any{map[string]any{"name": "r", "method": "GET", "path": "api/x", "categories": []any{"identity"}, "action": "read"}}), false,
			[]string{"spec.audit.routes[0].path", "must start with /"}},
		{"WebSocket on a PUT route", "DossierStore",
			set("audit.routes", []any{map[string]any{"name": "r", "method": "PUT", "path": "/x", "categories": []any{"identity"}, "action": "write", "allowWebSocket": true}}), false,
			[]string{"spec.audit.routes[0].allowWebSocket", "needs method GET"}},
		{"records on a route with {dossier}", "DossierStore",
			set("audit.routes", []any{map[string]any{"name": "r", "method": "GET", "path": "/api/dossiers/{dossier}", "categories": []any{"identity"}, "action": "read",
				"records": map[string]any{"dossierField": "/dossier"}}}), false,
			[]string{"spec.audit.routes[0].records", "only for a route without {dossier}"}},
		{"records on a WebSocket route", "DossierStore",
			set("audit.routes", []any{map[string]any{"name": "r", "method": "GET", "path": "/api/feed", "categories": []any{"identity"}, "action": "read", "allowWebSocket": true,
				"records": map[string]any{"dossierField": "/dossier"}}}), false,
			[]string{"spec.audit.routes[0].records", "cannot be combined with allowWebSocket"}},
		{"records on HEAD", "DossierStore",
			set("audit.routes", []any{map[string]any{"name": "r", "method": "HEAD", "path": "/api/list", "categories": []any{"identity"}, "action": "read",
				"records": map[string]any{"dossierField": "/dossier"}}}), false,
			[]string{"spec.audit.routes[0].records", "needs a method whose response has a body"}},
		{"records without a dossier field", "DossierStore",
			set("audit.routes", []any{map[string]any{"name": "r", "method": "GET", "path": "/api/list", "categories": []any{"identity"}, "action": "read",
				"records": map[string]any{"items": "/items"}}}), false,
			[]string{"spec.audit.routes[0].records.dossierField", "Required value"}},
		{"records items that are no JSON Pointer", "DossierStore",
			set("audit.routes", []any{map[string]any{"name": "r", "method": "GET", "path": "/api/list", "categories": []any{"identity"}, "action": "read",
				"records": map[string]any{"items": "addresses", "dossierField": "/dossier"}}}), false,
			[]string{"spec.audit.routes[0].records.items", "must be a JSON Pointer such as /addresses"}},
		{"a dossier field with a bad escape", "DossierStore",
			set("audit.routes", []any{map[string]any{"name": "r", "method": "GET", "path": "/api/list", "categories": []any{"identity"}, "action": "read",
				"records": map[string]any{"dossierField": "/a~2b"}}}), false,
			[]string{"spec.audit.routes[0].records.dossierField", "must be a JSON Pointer within an item"}},
		{"records in another format", "DossierStore",
			set("audit.routes", []any{map[string]any{"name": "r", "method": "GET", "path": "/api/list", "categories": []any{"identity"}, "action": "read",
				"records": map[string]any{"format": "CSV", "dossierField": "/dossier"}}}), false,
			[]string{"spec.audit.routes[0].records.format", `Unsupported value: "CSV"`}},
		{"records bound above 64 MiB", "DossierStore",
			set("audit.routes", []any{map[string]any{"name": "r", "method": "GET", "path": "/api/list", "categories": []any{"identity"}, "action": "read",
				"records": map[string]any{"dossierField": "/dossier", "maxBodyBytes": int64(67108865)}}}), false,
			[]string{"spec.audit.routes[0].records.maxBodyBytes", "less than or equal to 67108864"}},
		{"storage class changed", "DossierStore", set("storage.storageClassName", "other"), true,
			[]string{"spec.storage.storageClassName", "immutable"}},
		{"volume shrunk", "DossierStore", set("storage.size", "5Gi"), true,
			[]string{"spec.storage.size", "may grow but never shrink"}},
		{"service changed", "DossierStore", set("service", "YouthCare"), true,
			[]string{"spec.service", "immutable"}},

		// AccessRole
		{"no subjects", "AccessRole", set("subjects", []any{}), false,
			[]string{"spec.subjects", "at least 1 items"}},
		{"unknown subject kind", "AccessRole", set("subjects", []any{map[string]any{"kind": "Robot", "name": "r2"}}), false,
			[]string{"spec.subjects[0].kind", `Unsupported value: "Robot"`}},
		{"service account without namespace", "AccessRole", set("subjects", []any{map[string]any{"kind": "ServiceAccount", "name": "batch"}}), false,
			[]string{"spec.subjects[0]", "namespace is required for a ServiceAccount subject"}},
		{"duplicate subject", "AccessRole", set("subjects", []any{map[string]any{"kind": "Group", "name": "a"}, map[string]any{"kind": "Group", "name": "a"}}), false,
			[]string{"spec.subjects", "must not list the same subject twice"}},
		{"unknown action", "AccessRole", set("actions", []any{"delete"}), false,
			[]string{"spec.actions[0]", `Unsupported value: "delete"`}},
		{"break-glass without review period", "AccessRole",
			all(set("breakGlass", map[string]any{}), set("justification", "Acute zorg om de veiligheid van een kind")), false,
			[]string{"spec.breakGlass.reviewPeriod", "Required value"}},
		{"break-glass without justification", "AccessRole", set("breakGlass", map[string]any{"reviewPeriod": "P30D"}), false,
			[]string{"spec.justification of at least 20 characters is required for a break-glass role"}},
		{"break-glass review period not ISO 8601", "AccessRole",
			all(set("breakGlass", map[string]any{"reviewPeriod": "30 days"}), set("justification", "Acute zorg om de veiligheid van een kind")), false,
			[]string{"spec.breakGlass.reviewPeriod", "ISO 8601 period"}},
		{"every category without justification", "AccessRole", set("categories", allCategories), false,
			[]string{"required for a role that grants every data category"}},
		{"role store changed", "AccessRole", set("storeRef.name", "other"), true,
			[]string{"spec.storeRef", "immutable"}},

		// SharingAgreement
		{"consent basis without consent", "SharingAgreement", del("consent"), false,
			[]string{"spec.consent: Invalid value", "spec.consent is required when spec.legalBasis is Consent"}},
		{"consent given for another basis", "SharingAgreement",
			all(set("legalBasis", "LegalObligation"), set("legalReference", "Jeugdwet art. 7.1.4.1")), false,
			[]string{"must be absent for any other basis"}},
		{"vital interest without justification", "SharingAgreement",
			all(set("legalBasis", "VitalInterest"), del("consent"), set("reviewDate", "2027-01-01T00:00:00Z")), false,
			[]string{"spec.justification of at least 20 characters is required when spec.legalBasis is VitalInterest"}},
		{"vital interest without review date", "SharingAgreement",
			all(set("legalBasis", "VitalInterest"), del("consent"), set("justification", "Acute onveiligheid van een kind, Meldcode stap 5")), false,
			[]string{"spec.reviewDate: Required value", "spec.reviewDate is required when spec.legalBasis is VitalInterest"}},
		{"legal obligation without reference", "SharingAgreement", all(set("legalBasis", "LegalObligation"), del("consent")), false,
			[]string{"spec.legalReference is required when spec.legalBasis is LegalObligation or PublicTask"}},
		{"public task without reference", "SharingAgreement", all(set("legalBasis", "PublicTask"), del("consent")), false,
			[]string{"spec.legalReference is required"}},
		{"window ends before it starts", "SharingAgreement", set("validUntil", "2026-08-01T00:00:00Z"), false,
			[]string{"spec.validUntil: Invalid value", "spec.validUntil must be after spec.validFrom"}},
		{"partner not reachable", "SharingAgreement", del("partner.cidrs"), false,
			[]string{"spec.partner must be reachable by at least one of namespace, podSelector or cidrs"}},
		{"invalid CIDR", "SharingAgreement", set("partner.cidrs", []any{"10.0.0.300/24"}), false,
			[]string{"spec.partner.cidrs", "must hold valid CIDRs"}},
		{"CIDR for the whole internet", "SharingAgreement", set("partner.cidrs", []any{"0.0.0.0/0"}), false,
			[]string{"spec.partner.cidrs", "must not be broader than /8"}},
		{"port zero", "SharingAgreement", set("partner.ports", []any{map[string]any{"port": int64(0)}}), false,
			[]string{"spec.partner.ports[0].port", "greater than or equal to 1"}},
		{"consent reference is a name", "SharingAgreement", set("consent.reference", "Jan de Vries"), false,
			[]string{"spec.consent.reference", "never a name or BSN"}},
		{"unknown partner type", "SharingAgreement", set("partner.type", "Insurer"), false,
			[]string{"spec.partner.type", `Unsupported value: "Insurer"`}},
		{"endpoint over http", "SharingAgreement", all(set("partner.endpoint", "http://vi.example.nl/api"), set("partner.tls", tlsRefs)), false,
			[]string{"spec.partner.endpoint", "must be an https URL with a host"}},
		{"endpoint without a host", "SharingAgreement", all(set("partner.endpoint", "https:///api"), set("partner.tls", tlsRefs)), false,
			[]string{"spec.partner.endpoint", "must be an https URL with a host"}},
		{"endpoint not a URL", "SharingAgreement", all(set("partner.endpoint", "verwijsindex"), set("partner.tls", tlsRefs)), false,
			[]string{"spec.partner.endpoint", "must be an https URL with a host"}},
		{"endpoint with a password", "SharingAgreement", all(set("partner.endpoint", "https://cjg:geheim@vi.example.nl/api"), set("partner.tls", tlsRefs)), false,
			[]string{"spec.partner.endpoint", "must not hold a user name or password"}},
		{"endpoint with a query", "SharingAgreement", all(set("partner.endpoint", "https://vi.example.nl/api?key=1"), set("partner.tls", tlsRefs)), false,
			[]string{"spec.partner.endpoint", "must not hold a query or fragment"}},
		{"endpoint with a fragment", "SharingAgreement", all(set("partner.endpoint", "https://vi.example.nl/api#x"), set("partner.tls", tlsRefs)), false,
			[]string{"spec.partner.endpoint", "must not hold a query or fragment"}},
		{"endpoint without TLS", "SharingAgreement", set("partner.endpoint", "https://vi.example.nl/api"), false,
			[]string{"spec.partner.tls: Required value", "spec.partner.tls is required with spec.partner.endpoint"}},
		{"CA bundle Secret not a name", "SharingAgreement", all(set("partner.endpoint", "https://vi.example.nl/api"),
			set("partner.tls", map[string]any{"caBundle": map[string]any{"name": "VI CA"}})), false,
			[]string{"spec.partner.tls.caBundle.name", "should match"}},
		{"outbound routes without endpoint", "SharingAgreement", set("outboundRoutes", []any{outboundRoute("signal", "/signalen/{dossier}", "request")}), false,
			[]string{"spec.partner.endpoint: Required value", "spec.partner.endpoint is required with spec.outboundRoutes"}},
		{"outbound routes on an ingress agreement", "SharingAgreement",
			all(outbound, set("direction", "Ingress"), set("partner.subjects", []any{map[string]any{"kind": "Client", "name": "vi"}})), false,
			[]string{"spec.outboundRoutes", "need spec.direction Egress or Both"}},
		{"outbound route category outside the agreement", "SharingAgreement",
			all(outbound, set("outboundRoutes", []any{outboundRoute("signal", "/signalen/{dossier}", "health")})), false,
			[]string{"spec.outboundRoutes", "every route category must be one of spec.categories"}},
		{"outbound route path without slash", "SharingAgreement",
			all(outbound, set("outboundRoutes", []any{outboundRoute("signal", "signalen", "request")})), false,
			[]string{"spec.outboundRoutes[0].path", "must start with /"}},
		{"outbound route method unknown", "SharingAgreement",
			all(outbound, set("outboundRoutes", []any{map[string]any{"name": "s", "method": "TRACE", "path": "/s", "categories": []any{"request"}}})), false,
			[]string{"spec.outboundRoutes[0].method", `Unsupported value: "TRACE"`}},
		{"outbound route twice", "SharingAgreement",
			all(outbound, set("outboundRoutes", []any{outboundRoute("signal", "/a", "request"), outboundRoute("signal", "/b", "request")})), false,
			[]string{"spec.outboundRoutes[1]", "Duplicate value"}},
		{"agreement store changed", "SharingAgreement", set("storeRef.name", "other"), true,
			[]string{"spec.storeRef", "immutable"}},
		{"ingress without partner subjects", "SharingAgreement", set("direction", "Ingress"), false,
			[]string{"spec.partner.subjects: Required value", "must name at least one subject when spec.direction is Ingress or Both"}},
		{"both with empty partner subjects", "SharingAgreement", all(set("direction", "Both"), set("partner.subjects", []any{})), false,
			[]string{"spec.partner.subjects", "must name at least one subject when spec.direction is Ingress or Both"}},
		{"unknown partner subject kind", "SharingAgreement",
			all(set("direction", "Ingress"), set("partner.subjects", []any{map[string]any{"kind": "Robot", "name": "r2"}})), false,
			[]string{"spec.partner.subjects[0].kind", `Unsupported value: "Robot"`}},
		{"client subject with namespace", "SharingAgreement",
			set("partner.subjects", []any{map[string]any{"kind": "Client", "name": "lvs", "namespace": "school"}}), false,
			[]string{"spec.partner.subjects[0]", "namespace is required for a ServiceAccount subject and not allowed for User, Group or Client"}},
		{"duplicate partner subject", "SharingAgreement",
			set("partner.subjects", []any{map[string]any{"kind": "Client", "name": "lvs"}, map[string]any{"kind": "Client", "name": "lvs"}}), false,
			[]string{"spec.partner.subjects", "must not list the same subject twice"}},
		{"unknown consent mode", "SharingAgreement", set("consent.mode", "PerFamily"), false,
			[]string{"spec.consent.mode", `Unsupported value: "PerFamily"`}},
		{"whole-agreement consent without reference", "SharingAgreement", set("consent", map[string]any{"mode": "Agreement"}), false,
			[]string{"spec.consent.reference: Required value", "spec.consent.reference is required when spec.consent.mode is Agreement"}},
		{"withdrawal before consent", "SharingAgreement",
			all(set("consent.givenAt", "2026-09-01T00:00:00Z"), set("consent.withdrawnAt", "2026-08-01T00:00:00Z")), false,
			[]string{"spec.consent.withdrawnAt", "must not be before spec.consent.givenAt"}},
		{"quality oversight without legal reference", "SharingAgreement",
			all(set("partner.type", "Inspectorate"), set("legalBasis", "VitalInterest"), del("consent"),
				set("justification", "Onderzoek naar een calamiteit in de jeugdhulp"), set("reviewDate", "2027-01-01T00:00:00Z")), false,
			[]string{"spec.legalReference: Required value", "spec.legalReference is required for a quality-oversight partner"}},
		{"consent URL without dossier", "DossierStore", set("audit.consentURL", "https://cases.example/consent/{agreement}"), false,
			[]string{"spec.audit.consentURL", "must be an http(s) URL template containing {dossier} and {agreement}, {partner} or both"}},
		{"consent URL without agreement or partner", "DossierStore", set("audit.consentURL", "https://cases.example/consent/{dossier}"), false,
			[]string{"spec.audit.consentURL", "containing {dossier} and {agreement}, {partner} or both"}},
		{"consent URL not http", "DossierStore", set("audit.consentURL", "ftp://cases.example/{dossier}/{partner}"), false,
			[]string{"spec.audit.consentURL", "must be an http(s) URL template"}},
		{"consent cache above 60s", "DossierStore", set("audit.consentCacheTTL", "61s"), false,
			[]string{"spec.audit.consentCacheTTL", "above 0s and at most 60s"}},
		{"consent cache zero", "DossierStore", set("audit.consentCacheTTL", "0s"), false,
			[]string{"spec.audit.consentCacheTTL", "above 0s and at most 60s"}},
		{"consent cache in minutes", "DossierStore", set("audit.consentCacheTTL", "1m"), false,
			[]string{"spec.audit.consentCacheTTL", "a duration such as 5s"}},

		// RetentionPolicy
		{"period in words", "RetentionPolicy", rule(0, "period", "20 years"), false,
			[]string{"spec.rules[0].period", "ISO 8601 period with one positive unit"}},
		{"zero period", "RetentionPolicy", rule(0, "period", "P0Y"), false,
			[]string{"spec.rules[0].period", "ISO 8601 period with one positive unit"}},
		{"schedule in words", "RetentionPolicy", set("schedule", "every night"), false,
			[]string{"spec.schedule", "must be a cron schedule with five fields"}},
		{"schedule hour out of range", "RetentionPolicy", set("schedule", "0 25 * * *"), false,
			[]string{"spec.schedule", "hour 0-23"}},
		{"duplicate rule names", "RetentionPolicy", func(s map[string]any) {
			r := s["rules"].([]any)[0]
			s["rules"] = []any{r, r}
		}, false, []string{"spec.rules[1]", "Duplicate value"}},
		{"anonymise without columns", "RetentionPolicy", rule(0, "action", "Anonymise"), false,
			[]string{"spec.rules[0]", "anonymiseColumns must list at least one column when action is Anonymise"}},
		{"anonymise columns with delete", "RetentionPolicy", rule(0, "anonymiseColumns", []any{"name"}), false,
			[]string{"spec.rules[0]", "anonymiseColumns is only allowed when action is Anonymise"}},
		{"anonymise the id column", "RetentionPolicy", all(rule(0, "action", "Anonymise"), rule(0, "anonymiseColumns", []any{"id"})), false,
			[]string{"spec.rules[0]", "must not include idColumn or the clock column"}},
		{"table name with SQL", "RetentionPolicy", rule(0, "table", "dossiers; DROP TABLE clients"), false,
			[]string{"spec.rules[0].table", "must be a plain SQL table name"}},
		{"column name with quotes", "RetentionPolicy", rule(0, "legalHoldColumn", `hold" OR 1=1 --`), false,
			[]string{"spec.rules[0].legalHoldColumn", "must be a plain SQL identifier"}},
		{"dossier column with SQL", "RetentionPolicy", rule(0, "dossierColumn", "dossier_id; --"), false,
			[]string{"spec.rules[0].dossierColumn", "must be a plain SQL identifier"}},
		{"P0D after the last contact", "RetentionPolicy", rule(0, "period", "P0D"), false,
			[]string{"spec.rules[0]", "period P0D (destroy at the end of the involvement) needs clock.event EndOfHelp or Closure"}},
		{"zero years", "RetentionPolicy", all(rule(0, "period", "P0Y"), rule(0, "clock", map[string]any{"event": "EndOfHelp", "column": "ended_at"})), false,
			[]string{"spec.rules[0].period", "must be P0D (at the end of the involvement) or an ISO 8601 period"}},
		{"batch size zero", "RetentionPolicy", set("batchSize", int64(0)), false,
			[]string{"spec.batchSize", "greater than or equal to 1"}},
		{"no rules", "RetentionPolicy", set("rules", []any{}), false,
			[]string{"spec.rules", "at least 1 items"}},
		{"policy store changed", "RetentionPolicy", set("storeRef.name", "other"), true,
			[]string{"spec.storeRef", "immutable"}},
		{"response period over a month", "DossierStore", set("dataSubjectRights.responsePeriod", "P5W"), false,
			[]string{"spec.dataSubjectRights.responsePeriod", "at most one month (AVG art. 12(3))"}},
		{"response period in days over four weeks", "DossierStore", set("dataSubjectRights.responsePeriod", "P30D"), false,
			[]string{"spec.dataSubjectRights.responsePeriod", "at most one month"}},
		{"response period of two months", "DossierStore", set("dataSubjectRights.responsePeriod", "P2M"), false,
			[]string{"spec.dataSubjectRights.responsePeriod", "at most one month"}},

		// ProcessingActivity and the references to it
		{"activity public task without a legal reference", "ProcessingActivity", del("legalReference"), false,
			[]string{"spec.legalReference", "spec.legalReference is required when spec.legalBasis is LegalObligation or PublicTask"}},
		{"activity vital interest without a legal reference", "ProcessingActivity", all(set("legalBasis", "VitalInterest"), del("legalReference")), false,
			[]string{"spec.legalReference", "spec.legalReference is required when spec.legalBasis is VitalInterest"}},
		{"activity unknown legal basis", "ProcessingActivity", set("legalBasis", "LegitimateInterest"), false,
			[]string{"spec.legalBasis", `Unsupported value: "LegitimateInterest"`}},
		{"activity without data subjects", "ProcessingActivity", set("dataSubjectCategories", []any{}), false,
			[]string{"spec.dataSubjectCategories", "at least 1 items"}},
		{"activity unknown data category", "ProcessingActivity", set("dataCategories", []any{"identity", "medical"}), false,
			[]string{"spec.dataCategories[1]", `Unsupported value: "medical"`}},
		{"activity without retention policy", "ProcessingActivity", del("retention.policyRef"), false,
			[]string{"spec.retention.policyRef", "Required value"}},
		{"activity officer without an e-mail address", "ProcessingActivity", set("dataProtectionOfficer.email", "functionaris gegevensbescherming"), false,
			[]string{"spec.dataProtectionOfficer.email", "must be an e-mail address"}},
		{"activity register id with spaces", "ProcessingActivity", set("registerID", "register entry 12"), false,
			[]string{"spec.registerID", "must be a URI or code without spaces"}},
		{"activity purpose too short", "ProcessingActivity", set("purpose", "zorg"), false,
			[]string{"spec.purpose", "at least 10 chars"}},
		{"role naming an activity that is no name", "AccessRole", set("processingActivities", []any{"Cliënt Ervaring"}), false,
			[]string{"spec.processingActivities[0]", "must name a ProcessingActivity"}},
		{"role naming an activity twice", "AccessRole", set("processingActivities", []any{"ondersteuning", "ondersteuning"}), false,
			[]string{"spec.processingActivities[1]", "Duplicate value"}},
		{"agreement naming an activity that is no name", "SharingAgreement", set("processingActivities", []any{"_survey"}), false,
			[]string{"spec.processingActivities[0]", "must name a ProcessingActivity"}},
		{"route naming an activity that is no name", "DossierStore", func(s map[string]any) {
			s["audit"].(map[string]any)["routes"].([]any)[0].(map[string]any)["processingActivities"] = []any{"A B"}
		}, false, []string{"spec.audit.routes[0].processingActivities[0]", "must name a ProcessingActivity"}},
	}
	cases = append(cases, dsrInvalidCases...)
	if len(cases) < 25 {
		t.Fatalf("the issue asks for at least 25 invalid manifests, have %d", len(cases))
	}

	ctx := context.Background()
	ensureNamespace(t, validationNamespace)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := newObject(t, tc.kind, fmt.Sprintf("invalid-%d", i))
			if tc.update {
				if err := env.Client.Create(ctx, u); err != nil {
					t.Fatalf("create base: %v", err)
				}
				tc.change(spec(u))
				err := env.Client.Update(ctx, u)
				assertRejected(t, err, tc.want)
				return
			}
			tc.change(spec(u))
			err := env.Client.Create(ctx, u)
			assertRejected(t, err, tc.want)
		})
	}
}

// dsrInvalidCases break the rules of a DataSubjectRequest, each one.
var dsrInvalidCases = []struct {
	name   string
	kind   string
	change change
	update bool
	want   []string
}{
	{"dossier as a BSN", "DataSubjectRequest", set("dossier", "123456782"), false,
		[]string{"spec.dossier", "must be the dossier's pseudonym (64 lowercase hex digits"}},
	{"dossier as a raw id", "DataSubjectRequest", set("dossier", "D-1001"), false,
		[]string{"spec.dossier", "never a BSN, name or raw dossier id"}},
	{"dossier in upper-case hex", "DataSubjectRequest", set("dossier", strings.ToUpper("3f771686cc88a4b4235dec14b0b3689bb64ee8ceb4ce1c32f243b62b2a3dbb7f")), false,
		[]string{"spec.dossier", "64 lowercase hex digits"}},
	{"unknown request type", "DataSubjectRequest", set("type", "Portability"), false,
		[]string{"spec.type", `Unsupported value: "Portability"`}},
	{"unknown relation", "DataSubjectRequest", set("requester.relation", "Neighbour"), false,
		[]string{"spec.requester.relation", `Unsupported value: "Neighbour"`}},
	{"parent of a 16-year-old without consent", "DataSubjectRequest",
		all(set("requester.relation", "Parent"), set("subject.ageBand", "From16To17")), false,
		[]string{"spec.consentReference is required: from 16 a parent's or guardian's request needs the young person's consent"}},
	{"guardian of an adult without consent", "DataSubjectRequest",
		all(set("requester.relation", "Guardian"), set("subject.ageBand", "Adult")), false,
		[]string{"spec.consentReference is required"}},
	{"parent of a 13-year-old without co-decision", "DataSubjectRequest",
		all(set("requester.relation", "Parent"), set("subject.ageBand", "From12To15")), false,
		[]string{"spec.coDecisionReference is required: from 12 to 15 the child's co-decision is recorded"}},
	{"refusal without grounds", "DataSubjectRequest",
		set("decision", map[string]any{"outcome": "Refused", "decidedAt": "2026-10-10T10:00:00Z", "explanation": "Het verzoek raakt de privacy van anderen."}), false,
		[]string{"spec.decision.refusalGrounds: a Refused or PartiallyGranted decision needs at least one documented ground"}},
	{"refusal without explanation", "DataSubjectRequest",
		set("decision", map[string]any{"outcome": "Refused", "decidedAt": "2026-10-10T10:00:00Z", "refusalGrounds": []any{"PrivacyOfOthers"}}), false,
		[]string{"spec.decision.explanation: a Refused or PartiallyGranted decision needs an explanation"}},
	{"refusal on an unknown ground", "DataSubjectRequest",
		set("decision", map[string]any{"outcome": "Refused", "decidedAt": "2026-10-10T10:00:00Z", "refusalGrounds": []any{"TooBusy"}, "explanation": "Geen tijd om dit te doen."}), false,
		[]string{"spec.decision.refusalGrounds[0]", `Unsupported value: "TooBusy"`}},
	{"grant with refusal grounds", "DataSubjectRequest",
		set("decision", map[string]any{"outcome": "Granted", "decidedAt": "2026-10-10T10:00:00Z", "refusalGrounds": []any{"PrivacyOfOthers"}}), false,
		[]string{"spec.decision.refusalGrounds is only allowed when the outcome is Refused or PartiallyGranted"}},
	{"explanation with a BSN", "DataSubjectRequest",
		set("decision", map[string]any{"outcome": "Refused", "decidedAt": "2026-10-10T10:00:00Z", "refusalGrounds": []any{"PrivacyOfOthers"}, "explanation": "Betreft de broer, BSN 123456782."}), false,
		[]string{"spec.decision.explanation must hold no personal data"}},
	{"decided before receipt", "DataSubjectRequest",
		set("decision", map[string]any{"outcome": "Granted", "decidedAt": "2026-10-01T10:00:00Z"}), false,
		[]string{"spec.decision.decidedAt must not be before spec.receivedAt"}},
	{"restriction on an access request", "DataSubjectRequest", set("restriction", map[string]any{"categories": []any{"finance"}}), false,
		[]string{"spec.restriction is only allowed when spec.type is Restriction"}},
	{"objection without what is objected to", "DataSubjectRequest", set("type", "Objection"), false,
		[]string{"spec.objection is required when spec.type is Objection"}},
	{"objection naming no route", "DataSubjectRequest",
		all(set("type", "Objection"), set("objection", map[string]any{"purpose": "tevredenheidsonderzoek", "routes": []any{}})), false,
		[]string{"spec.objection", "needs routes, activities or both"}},
	{"objection naming neither routes nor activities", "DataSubjectRequest",
		all(set("type", "Objection"), set("objection", map[string]any{"purpose": "tevredenheidsonderzoek"})), false,
		[]string{"spec.objection", "needs routes, activities or both"}},
	{"objection naming no activity", "DataSubjectRequest",
		all(set("type", "Objection"), set("objection", map[string]any{"purpose": "tevredenheidsonderzoek", "activities": []any{}})), false,
		[]string{"spec.objection", "needs routes, activities or both"}},
	{"objection naming an activity twice", "DataSubjectRequest",
		all(set("type", "Objection"), set("objection", map[string]any{"purpose": "p", "activities": []any{"clientervaringsonderzoek", "clientervaringsonderzoek"}})), false,
		[]string{"spec.objection.activities[1]", "Duplicate value"}},
	{"extension by three months", "DataSubjectRequest", set("extension", map[string]any{"months": int64(3), "reason": "Veel verzoeken tegelijk."}), false,
		[]string{"spec.extension.months", "less than or equal to 2"}},
	{"extension without a reason", "DataSubjectRequest", set("extension", map[string]any{"months": int64(1)}), false,
		[]string{"spec.extension.reason", "Required value"}},
	{"ended before decided", "DataSubjectRequest", set("endedAt", "2026-10-06T10:00:00Z"), false,
		[]string{"spec.endedAt needs spec.decision"}},
	{"dossier changed", "DataSubjectRequest", set("dossier", "b9d88858ee62d645d9e45651cc19a782f9314866fc6b8c190a1ec31ec2284149"), true,
		[]string{"spec.dossier is immutable"}},
	{"receipt moved", "DataSubjectRequest", set("receivedAt", "2026-11-05T09:30:00Z"), true,
		[]string{"spec.receivedAt is immutable"}},
	{"type changed", "DataSubjectRequest", set("type", "Erasure"), true,
		[]string{"spec.type is immutable"}},
	{"erasure details on an access request", "DataSubjectRequest",
		set("erasure", map[string]any{"childInterestWeighing": map[string]any{"reference": "BW-2026-117", "decidedBy": "gedragswetenschapper"}}), false,
		[]string{"spec.erasure is only allowed when spec.type is Erasure"}},
	{"weighing without a reference", "DataSubjectRequest",
		all(set("type", "Erasure"), set("erasure", map[string]any{"childInterestWeighing": map[string]any{"decidedBy": "gedragswetenschapper"}})), false,
		[]string{"spec.erasure.childInterestWeighing.reference", "Required value"}},
	{"weighing without who decided", "DataSubjectRequest",
		all(set("type", "Erasure"), set("erasure", map[string]any{"childInterestWeighing": map[string]any{"reference": "BW-2026-117"}})), false,
		[]string{"spec.erasure.childInterestWeighing.decidedBy", "Required value"}},
	{"weighing referenced by a BSN", "DataSubjectRequest",
		all(set("type", "Erasure"), set("erasure", map[string]any{"childInterestWeighing": map[string]any{"reference": "123456782", "decidedBy": "gedragswetenschapper"}})), false,
		[]string{"spec.erasure.childInterestWeighing.reference must hold no personal data"}},
	{"retention extension without its end date", "DataSubjectRequest", set("type", "RetentionExtension"), false,
		[]string{"spec.retentionExtension is required when spec.type is RetentionExtension"}},
	{"end date on an access request", "DataSubjectRequest", set("retentionExtension", map[string]any{"until": "2031-12-31", "reference": "BRIEF-2026-118"}), false,
		[]string{"spec.retentionExtension is required when spec.type is RetentionExtension, and only allowed then"}},
	{"end date not a date", "DataSubjectRequest",
		all(set("type", "RetentionExtension"), set("retentionExtension", map[string]any{"until": "31-12-2031", "reference": "BRIEF-2026-118"})), false,
		[]string{"spec.retentionExtension.until", "date"}},
	{"end date before the receipt", "DataSubjectRequest",
		all(set("type", "RetentionExtension"), set("retentionExtension", map[string]any{"until": "2026-10-01", "reference": "BRIEF-2026-118"})), false,
		[]string{"spec.retentionExtension.until must be after spec.receivedAt"}},
	{"extension without a reference", "DataSubjectRequest",
		all(set("type", "RetentionExtension"), set("retentionExtension", map[string]any{"until": "2031-12-31"})), false,
		[]string{"spec.retentionExtension.reference", "Required value"}},
	{"extension referenced by a BSN", "DataSubjectRequest",
		all(set("type", "RetentionExtension"), set("retentionExtension", map[string]any{"until": "2031-12-31", "reference": "123456782"})), false,
		[]string{"spec.retentionExtension.reference must hold no personal data"}},
	{"dated erasure before the receipt", "DataSubjectRequest",
		all(set("type", "Erasure"), set("erasure", map[string]any{"notBefore": "2026-10-04"})), false,
		[]string{"spec.erasure.notBefore must not be before the day of spec.receivedAt"}},
	{"dated erasure not a date", "DataSubjectRequest",
		all(set("type", "Erasure"), set("erasure", map[string]any{"notBefore": "volgende week"})), false,
		[]string{"spec.erasure.notBefore", "date"}},
	{"cap on retention extensions as a duration", "DossierStore", set("dataSubjectRights.maxRetentionExtension", "8760h"), false,
		[]string{"spec.dataSubjectRights.maxRetentionExtension", "must be an ISO 8601 period"}},
}

// TestRetentionDecisionsImmutable: a retention extension's end date, and
// a dated erasure's date once decided, stay as recorded.
func TestRetentionDecisionsImmutable(t *testing.T) {
	ctx := context.Background()
	ensureNamespace(t, validationNamespace)
	decided := map[string]any{"outcome": "Granted", "decidedAt": "2026-10-10T10:00:00Z"}
	ext := newObject(t, "DataSubjectRequest", "extension-once")
	all(set("type", "RetentionExtension"), set("retentionExtension", map[string]any{"until": "2031-12-31", "reference": "BRIEF-2026-118"}))(spec(ext))
	if err := env.Client.Create(ctx, ext); err != nil {
		t.Fatalf("create an extension: %v", err)
	}
	set("retentionExtension.until", "2032-12-31")(spec(ext))
	assertRejected(t, env.Client.Update(ctx, ext), []string{"spec.retentionExtension.until is immutable"})

	for _, tc := range []struct {
		name   string
		before map[string]any // spec.erasure when decided
		after  change
	}{
		{"date changed", map[string]any{"notBefore": "2026-11-01"}, set("erasure.notBefore", "2026-12-01")},
		{"date removed", map[string]any{"notBefore": "2026-11-01"}, del("erasure.notBefore")},
		{"date set after the decision", map[string]any{}, set("erasure", map[string]any{"notBefore": "2026-12-01"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newObject(t, "DataSubjectRequest", "dated-"+strings.ReplaceAll(tc.name, " ", "-"))
			all(set("type", "Erasure"), set("erasure", tc.before), set("decision", decided))(spec(u))
			if err := env.Client.Create(ctx, u); err != nil {
				t.Fatalf("create a decided erasure: %v", err)
			}
			tc.after(spec(u))
			assertRejected(t, env.Client.Update(ctx, u), []string{"spec.erasure.notBefore is part of the decision"})
		})
	}
	// Before the decision the date may still change.
	u := newObject(t, "DataSubjectRequest", "dated-undecided")
	all(set("type", "Erasure"), set("erasure", map[string]any{"notBefore": "2026-11-01"}))(spec(u))
	if err := env.Client.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	set("erasure.notBefore", "2026-12-01")(spec(u))
	if err := env.Client.Update(ctx, u); err != nil {
		t.Errorf("changing the date before the decision: %v", err)
	}
}

// TestDecisionCannotBeRemoved: once recorded, a decision stays.
func TestDecisionCannotBeRemoved(t *testing.T) {
	ctx := context.Background()
	ensureNamespace(t, validationNamespace)
	u := newObject(t, "DataSubjectRequest", "decided-once")
	set("decision", map[string]any{"outcome": "Granted", "decidedAt": "2026-10-10T10:00:00Z"})(spec(u))
	if err := env.Client.Create(ctx, u); err != nil {
		t.Fatalf("create a decided request: %v", err)
	}
	del("decision")(spec(u))
	assertRejected(t, env.Client.Update(ctx, u), []string{"spec.decision cannot be removed once recorded"})
}

// TestEndOfInvolvementAccepted: P0D with the end of help or the closure as
// its clock is a valid rule.
func TestEndOfInvolvementAccepted(t *testing.T) {
	ensureNamespace(t, validationNamespace)
	for _, event := range []string{"EndOfHelp", "Closure"} {
		u := newObject(t, "RetentionPolicy", "p0d-"+strings.ToLower(event))
		all(rule(0, "period", "P0D"), rule(0, "clock", map[string]any{"event": event, "column": "ended_at"}))(spec(u))
		if err := env.Client.Create(context.Background(), u); err != nil {
			t.Errorf("P0D after %s rejected: %v", event, err)
		}
	}
}

// TestWeighingCannotBeRemoved: once recorded, the child's-interest
// weighing of an erasure stays, and an Erasure request with it is
// accepted.
func TestWeighingCannotBeRemoved(t *testing.T) {
	ctx := context.Background()
	ensureNamespace(t, validationNamespace)
	u := newObject(t, "DataSubjectRequest", "weighed-once")
	all(set("type", "Erasure"), set("erasure", map[string]any{"childInterestWeighing": map[string]any{"reference": "BW-2026-117", "decidedBy": "gedragswetenschapper"}}))(spec(u))
	if err := env.Client.Create(ctx, u); err != nil {
		t.Fatalf("create an erasure request with a weighing: %v", err)
	}
	del("erasure")(spec(u))
	assertRejected(t, env.Client.Update(ctx, u), []string{"spec.erasure.childInterestWeighing cannot be removed once recorded"})
}

func assertRejected(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want a rejection mentioning %q", want)
	}
	t.Logf("rejected: %v", err)
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("rejection does not mention %q:\n%v", w, err)
		}
	}
}

func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(context.Background(), ns); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}
