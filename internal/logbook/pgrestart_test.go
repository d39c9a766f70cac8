package logbook

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// ownPostgres is a PostgreSQL server of one test, which the test may
// restart without disturbing the other suites on the shared test server.
type ownPostgres struct {
	bindir, data, port string
	asUser             *user.User // set when running as root
}

// startOwnPostgres runs initdb and starts a server on a free loopback port,
// with the binaries hack/postgres.sh uses (/usr/lib/postgresql/*/bin or
// $PG_BINDIR). It is stopped when the test ends.
func startOwnPostgres(t *testing.T) *ownPostgres {
	t.Helper()
	bindir := os.Getenv("PG_BINDIR")
	if bindir == "" {
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		sort.Strings(dirs)
		if len(dirs) == 0 {
			t.Fatal("no PostgreSQL binaries in /usr/lib/postgresql/*/bin (hack/postgres.sh installs them) and PG_BINDIR is not set")
		}
		bindir = dirs[len(dirs)-1]
	}
	base, err := os.MkdirTemp("", "logbook-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	pg := &ownPostgres{bindir: bindir, data: filepath.Join(base, "data")}
	if os.Getuid() == 0 { // PostgreSQL refuses to run as root
		if pg.asUser, err = user.Lookup("postgres"); err != nil {
			t.Fatalf("running as root needs the OS user postgres of the Debian package: %v", err)
		}
		uid, _ := strconv.Atoi(pg.asUser.Uid)
		gid, _ := strconv.Atoi(pg.asUser.Gid)
		if err := os.Chmod(base, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(base, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pg.port = strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	_ = ln.Close()
	pg.run(t, "initdb", "-D", pg.data, "-U", "postgres", "-E", "UTF8", "--no-locale", "--auth=trust")
	pg.ctl(t, "start")
	t.Cleanup(func() { _ = pg.command("pg_ctl", "stop", "-D", pg.data, "-m", "immediate", "-w").Run() })
	return pg
}

func (pg *ownPostgres) command(name string, args ...string) *exec.Cmd {
	bin := filepath.Join(pg.bindir, name)
	if pg.asUser != nil {
		return exec.Command("runuser", append([]string{"-u", pg.asUser.Username, "--", bin}, args...)...)
	}
	return exec.Command(bin, args...)
}

func (pg *ownPostgres) run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := pg.command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

// ctl runs pg_ctl start, stop (fast) or restart (fast).
func (pg *ownPostgres) ctl(t *testing.T, action string) {
	t.Helper()
	pg.run(t, "pg_ctl", action, "-D", pg.data, "-m", "fast", "-w", "-t", "60", "-l", filepath.Join(filepath.Dir(pg.data), "log"),
		"-o", fmt.Sprintf("-p %s -c listen_addresses=127.0.0.1 -c unix_socket_directories=''", pg.port))
}

// postmasterPID is the first line of postmaster.pid.
func (pg *ownPostgres) postmasterPID(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(pg.data, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _, _ := strings.Cut(string(b), "\n")
	return pid
}

func (pg *ownPostgres) dsn() string {
	return "postgres://postgres@127.0.0.1:" + pg.port + "/postgres?sslmode=disable"
}

// TestPostgresRestartLosesNothingAcknowledged restarts the logbook's
// PostgreSQL (a fast shutdown, which rolls back open transactions, then a
// start) while 8 senders append, and checks that every acknowledged event
// is stored and the chain is contiguous.
func TestPostgresRestartLosesNothingAcknowledged(t *testing.T) {
	pg := startOwnPostgres(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pg.dsn())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	l, err := New(ctx, pool, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.TrustKey(ctx, store, signingKey.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(l.Handler(nil, 0))
	defer srv.Close()
	opts := shipOptions(filepath.Join(t.TempDir(), "audit.log"), srv.URL)
	opts.Logbook.AckTimeout = 10 * time.Second
	w, err := auditlog.NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	load := startSenders(w, 8)
	time.Sleep(300 * time.Millisecond)
	before := load.served.Load()
	pid := pg.postmasterPID(t)
	pg.ctl(t, "restart")
	if pg.postmasterPID(t) == pid {
		t.Fatal("the postmaster's pid did not change: PostgreSQL was not restarted")
	}
	// Service resumes once the pool reconnects; on a loaded machine that
	// can take longer than a fixed pause, so wait for it (bounded).
	var after int64
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if after = load.served.Load(); after > before || time.Now().After(deadline) {
			break
		}
	}
	load.stopAndCheck(t, w, l, fmt.Sprintf("across the restart (%d served before it, %d after)", before, after-before))
	if after <= before {
		t.Errorf("nothing was served after the restart")
	}
}
