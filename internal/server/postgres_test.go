package server

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nearcache/nearcache/loader"
)

// startPostgres runs a throwaway PostgreSQL server on 127.0.0.1 and returns
// its DSN. It skips when PostgreSQL's binaries are not installed.
func startPostgres(t *testing.T) string {
	t.Helper()
	initdb, err1 := exec.LookPath("initdb")
	postgres, err2 := exec.LookPath("postgres")
	if err1 != nil || err2 != nil {
		t.Skip("PostgreSQL (initdb, postgres) not installed")
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
			t.Skip("running as root and there is no postgres user")
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
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	srv := command(postgres, "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off")
	var logs strings.Builder
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() {
		_ = srv.Process.Signal(syscall.SIGINT) // fast shutdown, by pid
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = srv.Process.Kill()
			<-exited
		}
	})
	dsn := fmt.Sprintf("postgres://nc@127.0.0.1:%d/postgres?sslmode=disable", port)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(20 * time.Second)
	for db.Ping() != nil {
		select {
		case err := <-exited:
			t.Fatalf("postgres exited: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres not up within 20s\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond) // polling another process
	}
	if _, err := db.Exec("CREATE TABLE items (id TEXT PRIMARY KEY, body TEXT NOT NULL, version BIGINT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	return dsn
}

// TestSourcePostgres runs the source against a real PostgreSQL: pgx, $n
// placeholders, ON CONFLICT ... RETURNING, BIGINT versions.
func TestSourcePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server")
	}
	dsn := startPostgres(t)
	ctx := context.Background()
	if _, err := OpenSource(ctx, dsn, "missing"); err == nil || !strings.Contains(err.Error(), "table missing") {
		t.Errorf("OpenSource on a missing table = %v, want an error naming it", err)
	}
	s, err := OpenSource(ctx, dsn, "items")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.Load(ctx, "k"); !loader.IsNotFound(err) {
		t.Errorf("Load of a missing row = %v, want not found", err)
	}
	if _, err := s.LoadVersion(ctx, "k"); !loader.IsNotFound(err) {
		t.Errorf("LoadVersion of a missing row = %v, want not found", err)
	}
	for want := uint64(1); want <= 3; want++ {
		if v, err := s.Write(ctx, "k", fmt.Sprint("body ", want)); err != nil || v != want {
			t.Fatalf("Write = %d, %v, want %d", v, err, want)
		}
	}
	if it, ver, err := s.Load(ctx, "k"); err != nil || it != (Item{Body: "body 3", Version: 3}) || ver != 3 {
		t.Errorf("Load = %+v, %d, %v, want {body 3, 3}", it, ver, err)
	}
	if v, err := s.LoadVersion(ctx, "k"); err != nil || v != 3 {
		t.Errorf("LoadVersion = %d, %v, want 3", v, err)
	}
}
