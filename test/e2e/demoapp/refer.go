package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultEgressTokenFile is where the application's pod mounts its
// projected ServiceAccount token of the egress gateway's audience.
const DefaultEgressTokenFile = "/var/run/secrets/dossierguard/egress/token"

// Answer is what refer prints: the gateway's (or, through it, the
// partner's) answer.
type Answer struct {
	Status      int    `json:"status"`
	ContentType string `json:"contentType"`
	Body        string `json:"body"`
}

// referral is one send: a dossier's data of the categories, to the path
// below the agreement's base URL.
type referral struct {
	base, path, dossier, tokenFile string
	categories                     []string
}

func parseReferral(args []string) (referral, error) {
	var r referral
	var categories string
	fs := flag.NewFlagSet("refer", flag.ContinueOnError)
	fs.StringVar(&r.base, "base", "", "the agreement's base URL at the egress gateway (status.egressGatewayURL)")
	fs.StringVar(&r.path, "path", "/referrals/{dossier}", "the partner path; {dossier} is replaced by the dossier id")
	fs.StringVar(&r.dossier, "dossier", "", "the dossier id")
	fs.StringVar(&categories, "categories", "identity,contact", "comma-separated data categories the referral holds")
	fs.StringVar(&r.tokenFile, "token", DefaultEgressTokenFile, "the projected ServiceAccount token of the gateway's audience")
	if err := fs.Parse(args); err != nil {
		return r, err
	}
	switch {
	case r.base == "":
		return r, errors.New("-base is required: the agreement's base URL at the egress gateway")
	case r.dossier == "":
		return r, errors.New("-dossier is required")
	case !strings.HasPrefix(r.path, "/"):
		return r, errors.New("-path must start with /")
	}
	for _, c := range strings.Split(categories, ",") {
		if c = strings.TrimSpace(c); c != "" {
			r.categories = append(r.categories, c)
		}
	}
	return r, nil
}

// url is the base URL with the path, {dossier} replaced.
func (r referral) url() string {
	return strings.TrimSuffix(r.base, "/") + strings.ReplaceAll(r.path, "{dossier}", r.dossier)
}

// body is the referral: one member per category, from the dossier's row.
func referralBody(row map[string]string, categories []string) ([]byte, error) {
	members := map[string]map[string]string{}
	for _, c := range categories {
		switch c {
		case "identity":
			members[c] = map[string]string{"name": row["name"]}
		case "contact":
			members[c] = map[string]string{"phone": row["contact"]}
		case "request":
			members[c] = map[string]string{"request": row["request"]}
		case "bsn":
			members[c] = map[string]string{"bsn": row["bsn"]}
		case "decisions":
			members[c] = map[string]string{"decisions": row["decisions"]}
		default:
			return nil, fmt.Errorf("-categories: the demo's dossiers hold no %q data", c)
		}
	}
	return json.Marshal(members)
}

// refer sends one referral and prints the answer.
func refer(ctx context.Context, args []string, out io.Writer) error {
	r, err := parseReferral(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, "")
	if err != nil {
		return errors.New("database settings are invalid")
	}
	defer pool.Close()
	row := map[string]string{}
	var name, contact, request, bsn, decisions string
	err = pool.QueryRow(ctx, "SELECT name, contact, request, bsn, decisions FROM casefiles WHERE id = $1", r.dossier).
		Scan(&name, &contact, &request, &bsn, &decisions)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return errors.New("no such dossier")
	case err != nil:
		return errors.New("the dossier could not be read")
	}
	row["name"], row["contact"], row["request"], row["bsn"], row["decisions"] = name, contact, request, bsn, decisions
	body, err := referralBody(row, r.categories)
	if err != nil {
		return err
	}
	// The kubelet rotates the token: read it for every request.
	token, err := os.ReadFile(r.tokenFile)
	if err != nil {
		return fmt.Errorf("read the egress token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("send to the egress gateway: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	return json.NewEncoder(out).Encode(Answer{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: string(answer)})
}
