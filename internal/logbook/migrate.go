package logbook

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the key of the advisory lock Migrate holds, so that two
// logbooks starting together do not migrate at once.
const migrationLock = 0x646f737369657267 // "dossierg"

// Migration is one versioned step of the schema.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations are the steps of the schema in order, from migrations/NNNN_name.sql.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s is not named NNNN_name.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration versions must be 1, 2, 3, ... without gaps; %d is at place %d", m.Version, i+1)
		}
	}
	return ms, nil
}

// Migrate brings the schema in the connection's search_path up to date: it
// applies, each in its own transaction, every migration not yet recorded in
// logbook_schema_migrations. It needs the rights of the schema's owner and
// CREATEROLE (for the ingest role); the logbook itself can run with less
// (see the package doc). It returns the versions applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]int, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrationLock)); err != nil {
		return nil, fmt.Errorf("migrate: lock: %w", err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(migrationLock))
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS logbook_schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("migrate: create logbook_schema_migrations: %w", err)
	}
	var current int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM logbook_schema_migrations").Scan(&current); err != nil {
		return nil, fmt.Errorf("migrate: read version: %w", err)
	}
	if current > len(ms) {
		return nil, fmt.Errorf("migrate: the schema is at version %d, newer than this logbook knows (%d); run a newer logbook", current, len(ms))
	}
	var applied []int
	for _, m := range ms[current:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO logbook_schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("migrate: migration %d (%s): %w", m.Version, m.Name, err)
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
}

// checkSchema reports whether the schema is at the version this logbook
// needs, so that the logbook refuses to run on an old or unknown schema.
func checkSchema(ctx context.Context, db *pgxpool.Pool) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	var current int
	if err := db.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM logbook_schema_migrations").Scan(&current); err != nil {
		return fmt.Errorf("the logbook schema is missing (run `dossierguard logbook migrate`): %w", err)
	}
	if current != len(ms) {
		return fmt.Errorf("the logbook schema is at version %d, this logbook needs %d (run `dossierguard logbook migrate`)", current, len(ms))
	}
	return nil
}
