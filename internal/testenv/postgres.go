package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresDSNEnv names the environment variable with the DSN of the test
// PostgreSQL; `make test` starts one with hack/postgres.sh and sets it.
const PostgresDSNEnv = "DOSSIERGUARD_TEST_PG_DSN"

// PostgresDSN is the DSN of the test PostgreSQL; the test fails, saying how
// to start one, when PostgresDSNEnv is not set.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(PostgresDSNEnv)
	if dsn == "" {
		t.Fatalf("%s is not set: these tests need a real PostgreSQL. Run `make test`, which starts one "+
			"(hack/postgres.sh start) and sets %s, or by hand: hack/postgres.sh start && "+
			"%s=$(hack/postgres.sh dsn) go test ./PACKAGE/...", PostgresDSNEnv, PostgresDSNEnv, PostgresDSNEnv)
	}
	return dsn
}

// PostgresPool connects to the test PostgreSQL and checks that it answers;
// the pool is closed when the test ends.
func PostgresPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, PostgresDSN(t))
	if err != nil {
		t.Fatalf("connect to the test PostgreSQL: %v", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		t.Fatalf("connect to the test PostgreSQL (is it running? hack/postgres.sh start): %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// PostgresSchemaPool connects to the test PostgreSQL with the search_path
// set to schema and the application_name test-<schema>; the pool is closed
// when the test ends.
func PostgresSchemaPool(t testing.TB, schema string) *pgxpool.Pool {
	t.Helper()
	pc, err := pgxpool.ParseConfig(PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	pc.ConnConfig.RuntimeParams["search_path"] = schema
	pc.ConnConfig.RuntimeParams["application_name"] = "test-" + schema
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		t.Fatalf("connect to the test PostgreSQL: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// NewSchema creates, through pool, an empty schema of its own for one test,
// named prefix and random hex digits, and drops it with everything in it
// when the test ends. It returns the schema's name.
func NewSchema(t testing.TB, pool *pgxpool.Pool, prefix string) string {
	t.Helper()
	name := RandomName(prefix)
	if _, err := pool.Exec(context.Background(), "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("create schema %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// RandomName is a fresh lower-case SQL identifier that starts with prefix.
func RandomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
