package gossip

import (
	"slices"
)

type streamKey struct {
	origin string
	inc    uint64
}

type seqKey struct {
	streamKey
	seq uint64
}

type logRec struct {
	inc uint64
	inv Invalidation
}

// recentLog is a ring of the newest invalidations of all origins, used to
// answer repair requests and to fill push/pull states. Not safe for
// concurrent use (Cluster.mu guards it).
type recentLog struct {
	buf     []logRec
	next    int
	n       int
	idx     map[seqKey]int       // position in buf
	evicted map[streamKey]uint64 // highest seq evicted, per stream
}

func newRecentLog(size int) *recentLog {
	return &recentLog{buf: make([]logRec, size), idx: make(map[seqKey]int), evicted: make(map[streamKey]uint64)}
}

func (l *recentLog) add(inc uint64, inv Invalidation) {
	k := seqKey{streamKey{inv.Origin, inc}, inv.Seq}
	if _, ok := l.idx[k]; ok {
		return
	}
	if l.n == len(l.buf) {
		old := &l.buf[l.next]
		ok := seqKey{streamKey{old.inv.Origin, old.inc}, old.inv.Seq}
		delete(l.idx, ok)
		if old.inv.Seq > l.evicted[ok.streamKey] {
			l.evicted[ok.streamKey] = old.inv.Seq
		}
	} else {
		l.n++
	}
	l.buf[l.next] = logRec{inc: inc, inv: inv}
	l.idx[k] = l.next
	l.next = (l.next + 1) % len(l.buf)
}

func (l *recentLog) get(origin string, inc, seq uint64) (Invalidation, bool) {
	i, ok := l.idx[seqKey{streamKey{origin, inc}, seq}]
	if !ok {
		return Invalidation{}, false
	}
	return l.buf[i].inv, true
}

// newest returns the newest entries whose encoding fits in about budget
// bytes, grouped per stream and sorted by seq.
func (l *recentLog) newest(budget int) []originLog {
	by := map[streamKey]*originLog{}
	var order []streamKey
	used := 0
	for i := 0; i < l.n; i++ {
		r := &l.buf[(l.next-1-i+2*len(l.buf))%len(l.buf)]
		sz := 24 + len(r.inv.Group) + len(r.inv.Key)
		if used+sz > budget {
			break
		}
		used += sz
		k := streamKey{r.inv.Origin, r.inc}
		ol := by[k]
		if ol == nil {
			if len(order) == maxOrigins {
				break
			}
			used += 16 + len(k.origin)
			ol = &originLog{Origin: k.origin, Incarnation: k.inc}
			by[k] = ol
			order = append(order, k)
		}
		ol.Entries = append(ol.Entries, r.inv)
	}
	out := make([]originLog, 0, len(order))
	for _, k := range order {
		ol := by[k]
		slices.SortFunc(ol.Entries, func(a, b Invalidation) int {
			switch {
			case a.Seq < b.Seq:
				return -1
			case a.Seq > b.Seq:
				return 1
			}
			return 0
		})
		out = append(out, *ol)
	}
	return out
}
