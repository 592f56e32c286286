//go:build linux

package check

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// The witnesses of ProcStopWakeAlone. The random workload cannot be relied
// on to leave the woken node a stale value to serve: every hot key is
// written in the first second of the stop, those invalidations wait in the
// node's UDP buffer, and on SIGCONT the goroutine applying them races the
// HTTP handlers serving the queued reads; whichever the scheduler ran first
// decided whether a build without the freshness guard was caught. Witness
// keys take the race out: nobody but the fault touches them, so nothing in
// the node's sockets mentions them, and the write that supersedes them is
// made only once no peer sends the node anything any more. That takes
// ProcessConfig.Unseeded: otherwise every peer's rejoin loop dials the
// stopped node, a seed it does not count as live, every RejoinInterval, and
// the kernel queues each attempt's push/pull state, the witnesses' new
// versions in it (seen in a failed run: ~30 queued stream connections, 4,500
// invalidations received in the first 30 ms after SIGCONT, while the
// witness reads were answered; in one run of three the merge won and the
// node loaded version 2).

// witnessKeys is how many witness keys one ProcStopWakeAlone uses. Each is
// proven cached on the node before its stop (proveCached), so one would do;
// the others make a caught build's report say so four times.
const witnessKeys = 4

// witnessWait bounds how long the woken node may take to answer the
// witness reads while its peers stay frozen.
const witnessWait = 10 * time.Second

// witnessProofs bounds proveCached's tries per witness key.
const witnessProofs = 50

// cacheWitness adds the fault's witness keys to the source (at version 1),
// reads each through p and proves that p serves it from its store. It
// returns their prefix.
func (r *procRun) cacheWitness(ctx context.Context, p *proc) (string, error) {
	prefix := fmt.Sprintf("wake%d-", r.woke)
	r.woke++
	for i := range witnessKeys {
		key := prefix + fmt.Sprint(i)
		if _, err := r.c.db.ExecContext(ctx, "INSERT INTO items (id, body, version) VALUES (?, 'initial', 1)", key); err != nil {
			return "", fmt.Errorf("check: add witness key %s: %w", key, err)
		}
		if _, err := r.readThrough(ctx, p, key, 2*time.Second); err != nil {
			return "", fmt.Errorf("check: witness read of %s on %s: %w", key, p.name, err)
		}
		if err := r.proveCached(ctx, p, key); err != nil {
			return "", err
		}
	}
	return prefix, nil
}

// proveCached reads key through p until one read is proven a hit: p's
// miss counter did not move across it. (The store applies a Set
// asynchronously, and may drop one; until it shows the entry, a read is
// answered by the lingering flight or a new load, and counts as a miss.)
// Every other read through p counts there too, so an attempt that
// overlapped another miss proves nothing and is made again.
func (r *procRun) proveCached(ctx context.Context, p *proc, key string) error {
	base := p.view().base
	for try := 1; try <= witnessProofs; try++ {
		before, err := r.c.counters(ctx, base)
		if err != nil {
			return err
		}
		ver, err := r.readThrough(ctx, p, key, 2*time.Second)
		if err != nil {
			return fmt.Errorf("check: witness read of %s on %s: %w", key, p.name, err)
		}
		if ver != 1 {
			return fmt.Errorf("check: witness read of %s on %s: version %d, nobody wrote it", key, p.name, ver)
		}
		after, err := r.c.counters(ctx, base)
		if err != nil {
			return err
		}
		if after.Misses == before.Misses {
			r.cfg.Logger.Info("witness cached", "node", p.name, "key", key, "tries", try)
			return nil
		}
	}
	return fmt.Errorf("check: no read of witness %s on %s in %d was proven a hit", key, p.name, witnessProofs)
}

// wakeAloneWitness keeps the stopped node p stopped, reading hot keys
// patiently, until its peers have counted it out for deadQuiet (no peer
// sends it anything any more), then supersedes the witness keys through a
// running node (an AckAll write: p is no member), waits until that write is
// older than MaxStaleness plus the checker's slack, and sends a read of each
// witness key to p. Those reads wait in p's socket; the returned channel is
// closed once all of them have returned. Without the trust lease, p serves
// them version 1 (G5 and G7); with it, nothing cached.
func (r *procRun) wakeAloneWitness(ctx context.Context, p *proc, prefix string, rng *rand.Rand) (chan struct{}, error) {
	if !r.patientReads(ctx, p, ProcStopWakeAlone.stopFor(), rng, r.countedOut(p)) {
		return nil, fmt.Errorf("check: %s was not counted out by every peer for %v within %v of its stop",
			p.name, deadQuiet, ProcStopWakeAlone.stopFor()+maxPatience)
	}
	q := r.c.procs[r.pickUp(rng)]
	if q == p || q.view().state != procUp {
		return nil, fmt.Errorf("check: no running node to write the witness keys through")
	}
	for i := range witnessKeys {
		key := prefix + fmt.Sprint(i)
		a, ack, err := r.writeThrough(ctx, q, key, "superseded while "+p.name+" slept")
		if err != nil {
			return nil, fmt.Errorf("check: witness write of %s: %w", key, err)
		}
		if !ack {
			r.cfg.Logger.Warn("witness write not acknowledged by every member", "key", key, "answer", a)
		}
	}
	// The reads must start after the write is older than G5's bound and
	// slack (a duration the checker measures, not a synchronisation).
	r.patientReads(ctx, p, r.cfg.MaxStaleness+r.cfg.MaxStaleness/2+500*time.Millisecond, rng, nil)
	var wg sync.WaitGroup
	for i := range witnessKeys {
		key := prefix + fmt.Sprint(i)
		wg.Add(1)
		r.wg.Go(func() {
			defer wg.Done()
			start := time.Now()
			ver, err := r.readThrough(ctx, p, key, witnessWait+maxPatience)
			r.cfg.Logger.Info("witness read", "node", p.name, "key", key, "version", ver, "err", err,
				"took", time.Since(start).Round(time.Millisecond))
		})
	}
	answered := make(chan struct{})
	r.wg.Go(func() {
		wg.Wait()
		close(answered)
	})
	return answered, nil
}

// awaitWitness waits, after p's SIGCONT and while its peers stay frozen,
// until p has answered the witness reads, or witnessWait.
func (r *procRun) awaitWitness(ctx context.Context, p *proc, answered chan struct{}) {
	t := time.NewTimer(witnessWait)
	defer t.Stop()
	select {
	case <-answered:
	case <-ctx.Done():
	case <-t.C:
		r.cfg.Logger.Warn("witness", "node", p.name, "err", "the woken node did not answer the witness reads in time")
	}
}

// quiesceWrites holds writes through p back and waits until none of the
// campaign's PUTs to p is in flight (a PUT gives up after 5s).
func (r *procRun) quiesceWrites(ctx context.Context, p *proc) error {
	idle := p.holdWrites()
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("check: PUTs to %s still in flight 10s after writes through it were held back", p.name)
	}
}

// logSnapshot logs p's status and counters (see nodeSnapshot) at Info.
func (r *procRun) logSnapshot(ctx context.Context, p *proc, when string) {
	s, err := r.c.snapshot(ctx, p.view().base)
	if err != nil {
		r.cfg.Logger.Warn("snapshot", "node", p.name, "when", when, "err", err)
		return
	}
	r.cfg.Logger.Info("snapshot", append([]any{"node", p.name, "when", when}, s.logAttrs()...)...)
}
