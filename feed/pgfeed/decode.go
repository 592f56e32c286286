package pgfeed

import (
	"fmt"
	"math"
	"strconv"

	"github.com/jackc/pglogrepl"

	"github.com/nearcache/nearcache/node"
)

// relation is what the decoder knows of one table of the stream.
type relation struct {
	name string   // schema.table
	m    *mapping // nil = not mapped: its changes are ignored
	// Column positions in the relation's tuples, per format column.
	keyIdx  []int
	tagIdx  [][]int
	verIdx  int    // VersionColumn only
	broken  string // why this mapped relation cannot be decoded key by key ("" = fine): its changes invalidate the whole group
	columns []string
}

// decoder turns pgoutput messages into changes. Only the stream's reader
// goroutine uses it.
type decoder struct {
	maps        map[string]*mapping // by schema.table
	rels        map[uint32]*relation
	finalLSN    pglogrepl.LSN // of the transaction being decoded
	inTxn       bool
	ignored     uint64 // changes of unmapped tables (read by the reader only; published through items)
	fallbacks   uint64 // rows that could not be keyed and invalidated their group instead
	fallbackWhy string
}

func newDecoder(maps []mapping) *decoder {
	d := &decoder{maps: map[string]*mapping{}, rels: map[uint32]*relation{}}
	for i := range maps {
		d.maps[maps[i].table] = &maps[i]
	}
	return d
}

func (d *decoder) relation(msg *pglogrepl.RelationMessage) *relation {
	r := &relation{name: msg.Namespace + "." + msg.RelationName, m: d.maps[msg.Namespace+"."+msg.RelationName]}
	for _, c := range msg.Columns {
		r.columns = append(r.columns, c.Name)
	}
	d.rels[msg.RelationID] = r
	if r.m == nil {
		return r
	}
	idx := func(col string) int {
		for i, c := range r.columns {
			if c == col {
				return i
			}
		}
		if r.broken == "" {
			r.broken = fmt.Sprintf("table %s has no column %q", r.name, col)
		}
		return -1
	}
	for _, c := range r.m.key.cols {
		r.keyIdx = append(r.keyIdx, idx(c))
	}
	for _, t := range r.m.tags {
		var is []int
		for _, c := range t.cols {
			is = append(is, idx(c))
		}
		r.tagIdx = append(r.tagIdx, is)
	}
	r.verIdx = -1
	if r.m.Version == VersionColumn {
		r.verIdx = idx(r.m.VersionColumn)
	}
	return r
}

// values returns the text of tuple's columns at idx; nil for NULL, and ok
// false when a column is absent (unchanged TOAST, or not in the old row).
func values(t *pglogrepl.TupleData, idx []int) (vals []*string, ok bool) {
	if t == nil {
		return nil, false
	}
	vals = make([]*string, len(idx))
	for i, x := range idx {
		if x < 0 || x >= len(t.Columns) {
			return nil, false
		}
		switch c := t.Columns[x]; c.DataType {
		case pglogrepl.TupleDataTypeText, pglogrepl.TupleDataTypeBinary:
			s := string(c.Data)
			vals[i] = &s
		case pglogrepl.TupleDataTypeNull:
		default: // 'u': unchanged TOAST value, not sent
			return nil, false
		}
	}
	return vals, true
}

// rowKeys returns the key and tags of a tuple.
func (r *relation) rowKeys(t *pglogrepl.TupleData) (key string, tags []string, ok bool) {
	kv, ok := values(t, r.keyIdx)
	if !ok {
		return "", nil, false
	}
	if key, ok = r.m.key.render(kv); !ok {
		return "", nil, false // a NULL key column
	}
	for i, f := range r.m.tags {
		tv, ok := values(t, r.tagIdx[i])
		if !ok {
			return "", nil, false
		}
		if tag, ok := f.render(tv); ok {
			tags = append(tags, tag)
		}
	}
	return key, tags, true
}

// version returns the version of a row change (0 for VersionClock); ok is
// false when the version column is missing, NULL or out of range.
func (d *decoder) version(r *relation, t *pglogrepl.TupleData, plusOne bool) (uint64, bool) {
	switch r.m.Version {
	case VersionClock:
		return 0, true
	case VersionCommitLSN:
		return uint64(d.finalLSN) + 1, d.finalLSN > 0 && d.finalLSN < math.MaxInt64
	}
	vals, ok := values(t, []int{r.verIdx})
	if !ok || vals[0] == nil {
		return 0, false
	}
	v, err := strconv.ParseInt(*vals[0], 10, 64)
	if err != nil || v <= 0 || (plusOne && v == math.MaxInt64) {
		return 0, false
	}
	if plusOne {
		v++
	}
	return uint64(v), true
}

// row returns the changes of one INSERT, UPDATE or DELETE of relation id:
// the new row's key at its version and its tags; for an UPDATE that moved
// the row (another key or other tags) or a DELETE, the old row's too. A row
// it cannot key (a NULL or missing key column, a bad version) invalidates
// the whole group instead, which is always safe. ignored is true for a
// table that is not mapped.
func (d *decoder) row(id uint32, oldT, newT *pglogrepl.TupleData) (changes []node.Change, ignored bool, err error) {
	r := d.rels[id]
	if r == nil {
		return nil, false, fmt.Errorf("pgfeed: change of relation %d before its Relation message", id)
	}
	if r.m == nil {
		d.ignored++
		return nil, true, nil
	}
	group := func(why string) []node.Change {
		d.fallbacks++
		d.fallbackWhy = r.name + ": " + why
		return []node.Change{{Group: r.m.Group, Kind: node.ChangeGroup}}
	}
	if r.broken != "" {
		return group(r.broken), false, nil
	}
	var ver uint64
	var ok bool
	if newT != nil {
		ver, ok = d.version(r, newT, false)
	} else {
		ver, ok = d.version(r, oldT, true) // a DELETE: one past the old row's version
	}
	if !ok {
		return group("no usable version"), false, nil
	}
	seen := map[string]bool{}
	add := func(kind node.ChangeKind, k string) {
		id := string(rune('0'+kind)) + k
		if seen[id] {
			return
		}
		seen[id] = true
		c := node.Change{Group: r.m.Group, Kind: kind, Key: k}
		if kind == node.ChangeKey {
			c.Version = ver
		}
		changes = append(changes, c)
	}
	for _, t := range []*pglogrepl.TupleData{newT, oldT} {
		if t == nil {
			continue
		}
		key, tags, ok := r.rowKeys(t)
		if !ok {
			if t == oldT && newT != nil {
				continue // an UPDATE whose old row is only partly sent: its identity did not change
			}
			return group("row without its key columns"), false, nil
		}
		add(node.ChangeKey, key)
		for _, tg := range tags {
			add(node.ChangeTag, tg)
		}
	}
	return changes, false, nil
}

// truncate returns a ChangeGroup for each mapped group among relations ids.
func (d *decoder) truncate(ids []uint32) (changes []node.Change, ignored int) {
	seen := map[string]bool{}
	for _, id := range ids {
		r := d.rels[id]
		if r == nil || r.m == nil {
			d.ignored++
			ignored++
			continue
		}
		if !seen[r.m.Group] {
			seen[r.m.Group] = true
			changes = append(changes, node.Change{Group: r.m.Group, Kind: node.ChangeGroup})
		}
	}
	return changes, ignored
}
