package local

import (
	"sync"
	"sync/atomic"
)

type tagItem struct {
	tag string
	at  int64 // bumpedAt when queued
}

// tagTable holds tag versions. A tag without a record reads as base: base only
// grows, and forgetting a record raises base to at least its version, so a
// tag's current version never goes down (see doc.go, "Tags").
type tagTable struct {
	max int // records kept

	// epoch moves after every change of any tag's current version; an entry
	// recording the epoch it was validated at skips the per-tag check.
	epoch atomic.Uint64

	// mu guards the fields below.
	mu        sync.Mutex
	recs      map[string]tagRec
	fifo      []tagItem
	head      int
	base      uint64
	forgotten uint64
}

type tagRec struct {
	version  uint64
	bumpedAt int64
}

func (t *tagTable) init(maxRecs int) {
	t.max = maxRecs
	t.recs = make(map[string]tagRec)
}

// bump adds one to tag's version and returns the new version.
func (t *tagTable) bump(tag string, now int64) uint64 {
	t.mu.Lock()
	r, ok := t.recs[tag]
	if !ok {
		for len(t.recs) >= t.max {
			t.forgetOldestLocked()
		}
		r.version = t.base
		t.fifo = append(t.fifo, tagItem{tag: tag, at: now})
	}
	r.version++
	r.bumpedAt = now
	t.recs[tag] = r
	t.mu.Unlock()
	t.epoch.Add(1) // after the version change is visible: see Cache.tagsValid
	return r.version
}

// forgetOldestLocked drops the least recently bumped record (roughly), raising
// base so that the tag's current version does not go down.
func (t *tagTable) forgetOldestLocked() {
	it := t.fifo[t.head]
	t.fifo[t.head] = tagItem{}
	t.head++
	if t.head > 32 && t.head*2 > len(t.fifo) {
		n := copy(t.fifo, t.fifo[t.head:])
		clear(t.fifo[n:])
		t.fifo = t.fifo[:n]
		t.head = 0
	}
	r, ok := t.recs[it.tag]
	if !ok {
		return
	}
	if r.bumpedAt > it.at {
		t.fifo = append(t.fifo, tagItem{tag: it.tag, at: r.bumpedAt})
		return
	}
	delete(t.recs, it.tag)
	t.base = max(t.base, r.version)
	t.forgotten++
}

// version returns tag's current version.
func (t *tagTable) version(tag string) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.versionLocked(tag)
}

func (t *tagTable) versionLocked(tag string) uint64 {
	if r, ok := t.recs[tag]; ok {
		return r.version
	}
	return t.base
}

// current reports whether every captured version is still current.
func (t *tagTable) current(captured []TagVersion) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tv := range captured {
		if tv.Version < t.versionLocked(tv.Tag) {
			return false
		}
	}
	return true
}

func (t *tagTable) stats() (recs int, forgotten uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.recs), t.forgotten
}
