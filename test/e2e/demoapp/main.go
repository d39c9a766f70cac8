// Command demoapp is a small case-management application for the end-to-end
// suite: dossiers in PostgreSQL, served on :8080 behind the audit proxy (one
// at a time, and as the survey's address export GET /api/survey/addresses, a
// JSON array of {"dossier", "name"}), and
// the consent records the audit proxy asks before a partner's request
// (GET /internal/consent/{dossier}?agreement=...: 200 given, 410 withdrawn,
// 404 none). It holds made-up data only. It connects with the libpq environment variables
// (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE) and reports
// ready once its table exists.
//
// It also sends a dossier's referral to a partner the way an application
// does through the store's egress gateway (docs/egress-gateway.md), run in
// the application's container:
//
//	demoapp refer -base http://<store>-egress.<namespace>.svc/<agreement>/ -path /referrals/{dossier} \
//	    -dossier D-1001 -categories identity,contact [-token /var/run/secrets/dossierguard/egress/token]
//
// It reads the dossier, puts one member per category in a JSON body, POSTs
// it to the base URL with the path (its {dossier} replaced) and the pod's
// projected ServiceAccount token of the gateway's audience as a bearer
// token, read for this request, and prints one JSON line: the status, the
// content type and the body of the answer.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

const schema = `
CREATE TABLE IF NOT EXISTS casefiles (
  id text PRIMARY KEY, name text, contact text, request text, bsn text, decisions text);
INSERT INTO casefiles VALUES
  ('D-1001', 'Gezin Voorbeeld (fictief)', '06-00000000', 'Hulp bij schulden', '000000000', 'Wmo-beschikking huishoudelijke hulp 2026'),
  ('D-1002', 'Gezin Proef (fictief)', '06-11111111', 'Opvoedondersteuning', '000000001', 'Jeugdwet-beschikking 2026')
ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS consents (
  dossier text NOT NULL, agreement text NOT NULL, withdrawn_at timestamptz, PRIMARY KEY (dossier, agreement))`

func main() {
	if len(os.Args) > 1 && os.Args[1] == "refer" {
		if err := refer(context.Background(), os.Args[2:], os.Stdout); err != nil {
			log.Fatal(err)
		}
		return
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "")
	if err != nil {
		log.Fatal("database settings are invalid")
	}
	var ready atomic.Bool
	go func() {
		for !ready.Load() {
			if _, err := pool.Exec(ctx, schema); err == nil {
				ready.Store(true)
				log.Print("Dossiers ready")
				return
			}
			time.Sleep(time.Second)
		}
	}()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "database not ready", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("GET /api/dossiers/{id}", func(w http.ResponseWriter, r *http.Request) {
		var name, contact, request string
		respond(w, pool.QueryRow(r.Context(), "SELECT name, contact, request FROM casefiles WHERE id = $1", r.PathValue("id")).
			Scan(&name, &contact, &request), map[string]string{"name": name, "contact": contact, "request": request})
	})
	mux.HandleFunc("GET /api/dossiers/{id}/decisions", func(w http.ResponseWriter, r *http.Request) {
		var name, bsn, decisions string
		respond(w, pool.QueryRow(r.Context(), "SELECT name, bsn, decisions FROM casefiles WHERE id = $1", r.PathValue("id")).
			Scan(&name, &bsn, &decisions), map[string]string{"name": name, "bsn": bsn, "decisions": decisions})
	})
	// The survey's address export (route export-survey-addresses): one
	// item per dossier, each naming its dossier, so that the audit proxy
	// can leave out the dossiers objected to or restricted.
	mux.HandleFunc("GET /api/survey/addresses", func(w http.ResponseWriter, r *http.Request) {
		rows, err := pool.Query(r.Context(), "SELECT id, name FROM casefiles ORDER BY id")
		if err != nil {
			http.Error(w, "database error", http.StatusBadGateway)
			return
		}
		type address struct {
			Dossier string `json:"dossier"`
			Name    string `json:"name"`
		}
		list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (address, error) {
			var a address
			return a, row.Scan(&a.Dossier, &a.Name)
		})
		if err != nil {
			http.Error(w, "database error", http.StatusBadGateway)
			return
		}
		if list == nil {
			list = []address{} // an array, never null
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(list)
	})
	// The consent source of the store (spec.audit.consentURL): the signed
	// consent forms, one row per dossier and agreement.
	mux.HandleFunc("GET /internal/consent/{dossier}", func(w http.ResponseWriter, r *http.Request) {
		var withdrawn *time.Time
		err := pool.QueryRow(r.Context(), "SELECT withdrawn_at FROM consents WHERE dossier = $1 AND agreement = $2",
			r.PathValue("dossier"), r.URL.Query().Get("agreement")).Scan(&withdrawn)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			w.WriteHeader(http.StatusNotFound)
		case err != nil:
			w.WriteHeader(http.StatusBadGateway)
		case withdrawn != nil:
			w.WriteHeader(http.StatusGone)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	srv := &http.Server{Addr: ":8080", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

func respond(w http.ResponseWriter, err error, body map[string]string) {
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		http.Error(w, "no such dossier", http.StatusNotFound)
	case err != nil:
		http.Error(w, "database error", http.StatusBadGateway)
	default:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	}
}
