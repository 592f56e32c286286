package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/nearcache/nearcache/internal/needs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// debianBinGlob is where Debian and Ubuntu install PostgreSQL's server
// binaries, one directory per major version, off PATH.
const debianBinGlob = "/usr/lib/postgresql/*/bin"

// Options configures a server started with [StartWith]. The zero value is
// what [Start] runs.
type Options struct {
	// Logical sets wal_level=logical (with room for replication slots and
	// WAL senders), for tests of logical replication consumers.
	Logical bool
}

// Start runs a throwaway PostgreSQL server on 127.0.0.1 and returns its DSN
// (postgres://nc@127.0.0.1:PORT/postgres?sslmode=disable). The server is
// stopped and its files removed when t's cleanup runs. Start skips t when
// PostgreSQL's initdb and postgres are not installed, or when running as root
// without a "postgres" user to run them as.
func Start(t testing.TB) string {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is [Start] with options.
func StartWith(t testing.TB, o Options) string {
	t.Helper()
	return StartServer(t, o).DSN
}

// Server is a running throwaway PostgreSQL, for tests that stop and start
// it (a restart, an outage). Its methods are for the test's goroutine.
type Server struct {
	DSN string

	t      testing.TB
	cmd    func() *exec.Cmd // a new postgres process on the same data and port
	proc   *exec.Cmd
	exited chan error
	logs   *lockedBuffer
}

// StartServer is [StartWith], returning the server.
func StartServer(t testing.TB, o Options) *Server {
	t.Helper()
	initdb, postgres, err := findBinaries(debianBinGlob)
	if err != nil {
		needs.Missing(t, "PostgreSQL ("+err.Error()+")", "make bench-deps (apt-get install postgresql)")
	}
	dir, err := os.MkdirTemp("", "nearcache-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var cred *syscall.Credential
	if os.Getuid() == 0 { // PostgreSQL refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("pgtest: running as root and there is no postgres user to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	command := func(name string, args ...string) *exec.Cmd {
		c := exec.Command(name, args...)
		c.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		c.Env = append(os.Environ(), "LC_ALL=C")
		return c
	}
	data := filepath.Join(dir, "data")
	if out, err := command(initdb, "-D", data, "-U", "nc", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	args := []string{"-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=200"}
	if o.Logical {
		args = append(args, "-c", "wal_level=logical", "-c", "max_replication_slots=16",
			"-c", "max_wal_senders=16")
	}
	s := &Server{
		DSN:  fmt.Sprintf("postgres://nc@127.0.0.1:%d/postgres?sslmode=disable", port),
		t:    t,
		cmd:  func() *exec.Cmd { return command(postgres, args...) },
		logs: &lockedBuffer{},
	}
	t.Cleanup(s.Stop)
	s.Start()
	return s
}

// Start starts the server again after Stop (on the same port and data).
func (s *Server) Start() {
	s.t.Helper()
	if s.proc != nil {
		s.t.Fatal("pgtest: Start: the server is running")
	}
	srv := s.cmd()
	srv.Stdout, srv.Stderr = s.logs, s.logs
	if err := srv.Start(); err != nil {
		s.t.Fatalf("pgtest: start postgres: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	s.proc, s.exited = srv, exited
	if err := waitReady(s.DSN, exited, 20*time.Second); err != nil {
		s.t.Fatalf("pgtest: %v\n%s", err, s.logs.String())
	}
}

// Stop shuts the server down (fast shutdown: clients are disconnected) and
// waits for it to exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.proc == nil {
		return
	}
	_ = s.proc.Process.Signal(syscall.SIGINT) // fast shutdown, by pid
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.proc.Process.Kill()
		<-s.exited
	}
	s.proc, s.exited = nil, nil
}

// waitReady pings dsn until it answers, postgres exits, or limit passes.
func waitReady(dsn string, exited <-chan error, limit time.Duration) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond) // polling another process
	defer tick.Stop()
	for {
		perr := db.PingContext(ctx)
		if perr == nil {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("postgres exited before accepting connections: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("postgres not accepting connections within %v: %v", limit, perr)
		case <-tick.C:
		}
	}
}

// findBinaries returns the paths of initdb and postgres: from PATH when both
// are there, else from the newest major version under glob.
func findBinaries(glob string) (initdb, postgres string, err error) {
	i, err1 := exec.LookPath("initdb")
	p, err2 := exec.LookPath("postgres")
	if err1 == nil && err2 == nil {
		return i, p, nil
	}
	dirs, _ := filepath.Glob(glob) // the pattern is constant and valid
	slices.SortFunc(dirs, func(a, b string) int { return compareVersions(versionOf(a), versionOf(b)) })
	for _, d := range slices.Backward(dirs) {
		i, p := filepath.Join(d, "initdb"), filepath.Join(d, "postgres")
		if isExecutable(i) && isExecutable(p) {
			return i, p, nil
		}
	}
	return "", "", errors.New("PostgreSQL's initdb and postgres are neither on PATH nor under " + glob)
}

// versionOf returns the major-version directory of a .../<version>/bin path.
func versionOf(binDir string) string { return filepath.Base(filepath.Dir(binDir)) }

// compareVersions orders dotted version strings numerically ("9.6" < "15");
// parts that are not numbers compare as strings.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for k := 0; k < len(as) && k < len(bs); k++ {
		x, errx := strconv.Atoi(as[k])
		y, erry := strconv.Atoi(bs[k])
		if errx != nil || erry != nil {
			if c := strings.Compare(as[k], bs[k]); c != 0 {
				return c
			}
			continue
		}
		if x != y {
			return x - y
		}
	}
	return len(as) - len(bs)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
