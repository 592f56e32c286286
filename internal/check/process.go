//go:build linux

package check

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // the test reads the nodes' SQLite source directly
)

// procState is what the campaign did last to a process slot.
type procState uint8

const (
	procDown    procState = iota // not running (killed, exited, or not started yet)
	procUp                       // running
	procStopped                  // SIGSTOPped
)

// proc is one node name of a process campaign and the process that holds it
// now. Each start is a new incarnation, recorded as name@inc: a restarted
// process has an empty cache and applied nothing, so the per-node floors of
// G1 and G2 hold per incarnation (DESIGN.md: "once node X has applied").
type proc struct {
	name string

	// mu guards the fields below.
	mu         sync.Mutex
	inc        int // starts of this name so far, minus one
	gossipPort int
	httpPort   int
	state      procState
	cmd        *exec.Cmd
	exited     chan struct{} // closed when this incarnation's Wait returned
	log        *os.File
	writing    int           // the campaign's PUTs in flight through this slot
	held       chan struct{} // while writes are held back (holdWrites): closed once writing is 0
}

// view is what a client sees of a slot at one instant.
type view struct {
	label string // name@inc
	inc   int
	base  string // http://127.0.0.1:port
	state procState
}

func (p *proc) view() view {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.viewLocked()
}

func (p *proc) viewLocked() view {
	return view{label: fmt.Sprintf("%s@%d", p.name, p.inc), inc: p.inc,
		base: "http://127.0.0.1:" + strconv.Itoa(p.httpPort), state: p.state}
}

func (p *proc) incarnation() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inc
}

// procCluster is cfg.Nodes `nearcache node` processes on 127.0.0.1 sharing
// one SQLite source.
type procCluster struct {
	cfg     ProcessConfig
	log     *slog.Logger
	cluster string // memberlist label, unique per run (at most 32 bytes)
	keyFile string
	dsn     string
	verQ    string // the source's version query, in its driver's placeholders
	logDir  string
	hc      *http.Client
	db      *sql.DB // the test's own connection to the source
	procs   []*proc
	waiters sync.WaitGroup // one per started process, until Wait returns
}

var processRuns atomic.Int64 // process clusters started by this test process

// newProcCluster writes the gossip key and the source (keys at version 1)
// under cfg.Dir, or in cfg.Postgres; no process runs yet.
func newProcCluster(ctx context.Context, cfg ProcessConfig, keys []string) (*procCluster, error) {
	c := &procCluster{
		cfg:     cfg,
		log:     cfg.Logger,
		cluster: fmt.Sprintf("pc-%d-%d", os.Getpid(), processRuns.Add(1)),
		keyFile: filepath.Join(cfg.Dir, "gossip.key"),
		logDir:  filepath.Join(cfg.Dir, "logs"),
		hc: &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: 64,
			DisableCompression:  true,
			DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		}},
	}
	if err := os.MkdirAll(c.logDir, 0o755); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	key := hex.EncodeToString(bytes.Repeat([]byte{0x5a}, 32))
	if err := os.WriteFile(c.keyFile, []byte(key+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("check: write gossip key: %w", err)
	}
	if cfg.Postgres != "" {
		db, err := openPostgres(ctx, cfg.Postgres, keys)
		if err != nil {
			return nil, err
		}
		c.db, c.dsn, c.verQ = db, cfg.Postgres, "SELECT version FROM items WHERE id = $1"
		for i := range cfg.Nodes {
			c.procs = append(c.procs, &proc{name: "n" + strconv.Itoa(i)})
		}
		return c, nil
	}
	path := filepath.Join(cfg.Dir, "source.db")
	c.dsn, c.verQ = "sqlite://"+path, "SELECT version FROM items WHERE id = ?"
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, fmt.Errorf("check: open source: %w", err)
	}
	c.db = db
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY, body TEXT NOT NULL, version INTEGER NOT NULL)"); err != nil {
		db.Close()
		return nil, fmt.Errorf("check: create source table: %w", err)
	}
	for _, k := range keys {
		if _, err := db.ExecContext(ctx, "INSERT OR REPLACE INTO items (id, body, version) VALUES (?, 'initial', 1)", k); err != nil {
			db.Close()
			return nil, fmt.Errorf("check: fill source: %w", err)
		}
	}
	for i := range cfg.Nodes {
		c.procs = append(c.procs, &proc{name: "n" + strconv.Itoa(i)})
	}
	return c, nil
}

// sourceVersion reads key's version from the source, bypassing every node.
func (c *procCluster) sourceVersion(ctx context.Context, key string) (uint64, error) {
	var v int64
	if err := c.db.QueryRowContext(ctx, c.verQ, key).Scan(&v); err != nil {
		return 0, fmt.Errorf("check: source version of %s: %w", key, err)
	}
	return uint64(v), nil
}

// freeUDPTCPPort returns a port free on 127.0.0.1 for both TCP and UDP.
// Another process may take it before the node binds it: starts retry.
func freeUDPTCPPort() (int, error) {
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("check: free port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		ln.Close()
		if err == nil {
			pc.Close()
			return port, nil
		}
	}
	return 0, errors.New("check: no port free for both TCP and UDP")
}

// args are p's command line, joining every other node on its current port
// (but the last one, when cfg.Unseeded).
func (c *procCluster) args(p *proc) []string {
	var join []string
	for i, q := range c.procs {
		if q == p || (c.cfg.Unseeded && i == len(c.procs)-1) {
			continue
		}
		q.mu.Lock()
		join = append(join, "127.0.0.1:"+strconv.Itoa(q.gossipPort))
		q.mu.Unlock()
	}
	p.mu.Lock()
	gossipPort, httpPort := p.gossipPort, p.httpPort
	p.mu.Unlock()
	args := []string{"node",
		"--name", p.name,
		"--profile", "local",
		"--cluster", c.cluster,
		"--bind-addr", "127.0.0.1",
		"--gossip-port", strconv.Itoa(gossipPort),
		"--http-addr", "127.0.0.1:" + strconv.Itoa(httpPort),
		"--source", c.dsn,
		"--join", strings.Join(join, ","),
		"--max-staleness", c.cfg.MaxStaleness.String(),
		"--ack-timeout", "1s",
		"--shutdown-timeout", "3s",
		"--join-timeout", "5s",
		"--secret-key-file", c.keyFile,
		"--log-level", c.cfg.LogLevel,
	}
	if c.cfg.Postgres != "" {
		args = append(args, "--feed")
	}
	return args
}

// assignPorts gives every slot its ports before the first start, so each
// node's join list names every other node.
func (c *procCluster) assignPorts() error {
	for _, p := range c.procs {
		g, err := freeUDPTCPPort()
		if err != nil {
			return err
		}
		h, err := freeUDPTCPPort()
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.gossipPort, p.httpPort = g, h
		p.mu.Unlock()
	}
	return nil
}

// launch starts a new incarnation of p (the first when first is set) on
// its current ports. It does not wait for it to be ready.
func (c *procCluster) launch(p *proc, first bool) error {
	args := c.args(p)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !first {
		p.inc++ // before the start: a request sent from now on is for the new incarnation
	}
	v := p.viewLocked()
	f, err := os.Create(filepath.Join(c.logDir, v.label+".log"))
	if err != nil {
		return fmt.Errorf("check: log file: %w", err)
	}
	cmd := exec.Command(c.cfg.Binary, args...)
	cmd.Env = os.Environ()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("check: start %s: %w", v.label, err)
	}
	exited := make(chan struct{})
	c.waiters.Go(func() {
		_ = cmd.Wait()
		f.Close()
		p.mu.Lock()
		if p.cmd == cmd {
			p.state = procDown
		}
		p.mu.Unlock()
		close(exited)
	})
	p.cmd, p.exited, p.log, p.state = cmd, exited, f, procUp
	c.log.Info("started", "node", v.label, "pid", cmd.Process.Pid, "http", v.base)
	return nil
}

// beginWrite counts a PUT about to be sent to p, and reports false (count
// nothing, send nothing) while p holds writes back.
func (p *proc) beginWrite() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held != nil {
		return false
	}
	p.writing++
	return true
}

// endWrite counts a PUT to p as returned.
func (p *proc) endWrite() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writing--
	if p.writing == 0 && p.held != nil {
		select {
		case <-p.held:
		default:
			close(p.held)
		}
	}
}

// holdWrites makes beginWrite refuse p until releaseWrites, and returns a
// channel closed once no PUT to p is in flight. The nodes share one SQLite
// file: a process stopped inside a source write holds its lock, and every
// node's writes wait for it until it resumes.
func (p *proc) holdWrites() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held = make(chan struct{})
	if p.writing == 0 {
		close(p.held)
	}
	return p.held
}

// releaseWrites lets writes through p again.
func (p *proc) releaseWrites() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held = nil
}

// signal sends sig to p's current process, by pid.
func (p *proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return fmt.Errorf("check: %s has no process", p.name)
	}
	if err := syscall.Kill(p.cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("check: signal %v to %s: %w", sig, p.name, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		p.state = procStopped
	case syscall.SIGCONT:
		if p.state == procStopped {
			p.state = procUp
		}
	}
	return nil
}

// stop sends SIGSTOP to p and waits until every thread of its process is
// stopped. kill returns once the signal is sent; on a busy CPU a thread runs
// on for a moment (seen: a peer frozen for ProcStopWakeAlone answered the
// woken node's push/pull, the witnesses' new versions in it, 1 ms after
// the woken node's SIGCONT). The kernel offers no event for it that does
// not compete with Wait, so the task states are polled, every millisecond,
// for at most limit.
func (p *proc) stop(ctx context.Context, limit time.Duration) error {
	if err := p.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	p.mu.Lock()
	pid := p.cmd.Process.Pid
	p.mu.Unlock()
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		stopped, err := allStopped(pid)
		if err != nil || stopped {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("check: %s not stopped %v after SIGSTOP", p.name, limit)
		case <-t.C:
		}
	}
}

// allStopped reports whether every thread of process pid is stopped
// (state T or t in /proc/pid/task/*/stat).
func allStopped(pid int) (bool, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("check: %w", err)
	}
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "stat"))
		if err != nil {
			return false, nil // the thread exited meanwhile: look again
		}
		// pid (comm) state ...: comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			return false, fmt.Errorf("check: unreadable %s/%s/stat", dir, t.Name())
		}
		if st := b[i+2]; st != 'T' && st != 't' {
			return false, nil
		}
	}
	return len(tasks) > 0, nil
}

// kill sends SIGKILL to p and waits for the process to be gone.
func (p *proc) kill() error {
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.waitChan()
	return nil
}

func (p *proc) waitChan() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited == nil {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return p.exited
}

// terminate stops p gracefully: SIGCONT (in case it is stopped), SIGTERM,
// then SIGKILL if it has not exited within grace.
func (p *proc) terminate(grace time.Duration) {
	ch := p.waitChan()
	select {
	case <-ch:
		return
	default:
	}
	_ = p.signal(syscall.SIGCONT)
	_ = p.signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
		_ = p.signal(syscall.SIGKILL)
		<-ch
	}
}

// readiness is what /readyz answers.
type readiness struct {
	Ready   bool `json:"ready"`
	Trusted bool `json:"trusted"`
	Members int  `json:"members"`
}

func (c *procCluster) readyz(ctx context.Context, base string) (readiness, error) {
	var r readiness
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return r, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return r, fmt.Errorf("readyz: %w", err)
	}
	return r, nil
}

// errAddrInUse says a node could not bind its ports: retry elsewhere.
var errAddrInUse = errors.New("check: address already in use")

// waitReady polls p's /readyz until it is ready and sees every member, its
// process exits, or timeout passes.
func (c *procCluster) waitReady(ctx context.Context, p *proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	ch := p.waitChan()
	v := p.view()
	for {
		select {
		case <-ch:
			tail := c.logTail(v.label)
			if strings.Contains(tail, "address already in use") {
				return fmt.Errorf("%s: %w", v.label, errAddrInUse)
			}
			return fmt.Errorf("check: %s exited before it was ready:\n%s", v.label, tail)
		default:
		}
		r, err := c.readyz(ctx, v.base)
		if err == nil && r.Ready && r.Members == len(c.procs) {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("check: %s not ready within %v (last: %+v, %v)", v.label, timeout, r, err)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil { // polling another process
			return err
		}
	}
}

// restart starts a new incarnation of p and waits until it is ready; when
// its ports were taken meanwhile, it moves it to new ones.
func (c *procCluster) restart(ctx context.Context, p *proc) error {
	for attempt := 1; ; attempt++ {
		if err := c.launch(p, false); err != nil {
			return err
		}
		err := c.waitReady(ctx, p, 30*time.Second)
		if err == nil || !errors.Is(err, errAddrInUse) || attempt == 3 {
			return err
		}
		c.log.Warn("ports taken, moving", "node", p.name, "err", err)
		if err := c.movePorts(p); err != nil {
			return err
		}
	}
}

// movePorts gives p new gossip and HTTP ports, for its next launch.
func (c *procCluster) movePorts(p *proc) error {
	g, gerr := freeUDPTCPPort()
	h, herr := freeUDPTCPPort()
	if err := errors.Join(gerr, herr); err != nil {
		return err
	}
	p.mu.Lock()
	p.gossipPort, p.httpPort = g, h
	p.mu.Unlock()
	return nil
}

// startAll starts every node and waits until each is ready and sees all
// members, moving every port after a collision.
func (c *procCluster) startAll(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		if err := c.assignPorts(); err != nil {
			return err
		}
		for _, p := range c.procs {
			if err := c.launch(p, attempt == 1); err != nil {
				return err
			}
		}
		var err error
		for _, p := range c.procs {
			if err = c.waitReady(ctx, p, 30*time.Second); err != nil {
				break
			}
		}
		if err == nil || !errors.Is(err, errAddrInUse) || attempt == 3 {
			return err
		}
		c.log.Warn("port collision, restarting the cluster", "err", err)
		for _, p := range c.procs {
			p.terminate(5 * time.Second)
		}
	}
}

// close stops every process and releases the client and the source.
func (c *procCluster) close() {
	// Idle connections first: a server's graceful shutdown waits for a
	// connection that never carried a request.
	c.hc.CloseIdleConnections()
	for _, p := range c.procs {
		p.terminate(5 * time.Second)
	}
	c.waiters.Wait()
	c.hc.CloseIdleConnections()
	c.db.Close()
}

// logTail returns the end of an incarnation's log.
func (c *procCluster) logTail(label string) string {
	b, err := os.ReadFile(filepath.Join(c.logDir, label+".log"))
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
