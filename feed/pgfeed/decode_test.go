package pgfeed

import (
	"reflect"
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/nearcache/nearcache/node"
)

func tuple(vals ...any) *pglogrepl.TupleData {
	t := &pglogrepl.TupleData{}
	for _, v := range vals {
		switch v := v.(type) {
		case nil:
			t.Columns = append(t.Columns, &pglogrepl.TupleDataColumn{DataType: pglogrepl.TupleDataTypeNull})
		case string:
			t.Columns = append(t.Columns, &pglogrepl.TupleDataColumn{DataType: pglogrepl.TupleDataTypeText, Data: []byte(v)})
		}
	}
	return t
}

// TestDecodeRows covers the row rules without a server: keys and tags from
// columns, an UPDATE that moves a row invalidates the old key and tag too,
// a DELETE is applied one past the old version, a NULL tag column is
// skipped, and a row that cannot be keyed invalidates its group.
func TestDecodeRows(t *testing.T) {
	m, err := compile(Mapping{Table: "orders", Group: "g", Key: "o:{id}", Version: VersionColumn, VersionColumn: "v", Tags: []string{"u:{user_id}"}})
	if err != nil {
		t.Fatal(err)
	}
	d := newDecoder([]mapping{m})
	d.relation(&pglogrepl.RelationMessage{RelationID: 1, Namespace: "public", RelationName: "orders",
		Columns: []*pglogrepl.RelationMessageColumn{{Name: "id"}, {Name: "user_id"}, {Name: "v"}}})
	d.relation(&pglogrepl.RelationMessage{RelationID: 2, Namespace: "public", RelationName: "other",
		Columns: []*pglogrepl.RelationMessageColumn{{Name: "id"}}})
	key := func(k string, v uint64) node.Change {
		return node.Change{Group: "g", Kind: node.ChangeKey, Key: k, Version: v}
	}
	tag := func(k string) node.Change { return node.Change{Group: "g", Kind: node.ChangeTag, Key: k} }
	group := node.Change{Group: "g", Kind: node.ChangeGroup}
	for _, tc := range []struct {
		name       string
		rel        uint32
		old, new   *pglogrepl.TupleData
		want       []node.Change
		wantIgnore bool
	}{
		{"insert", 1, nil, tuple("1", "7", "10"), []node.Change{key("o:1", 10), tag("u:7")}, false},
		{"update in place", 1, tuple("1", "7", "10"), tuple("1", "7", "12"), []node.Change{key("o:1", 12), tag("u:7")}, false},
		{"update moves the row", 1, tuple("1", "7", "10"), tuple("2", "8", "12"),
			[]node.Change{key("o:2", 12), tag("u:8"), key("o:1", 12), tag("u:7")}, false},
		{"delete", 1, tuple("1", "7", "10"), nil, []node.Change{key("o:1", 11), tag("u:7")}, false},
		{"NULL tag column", 1, nil, tuple("1", nil, "10"), []node.Change{key("o:1", 10)}, false},
		{"NULL key column", 1, nil, tuple(nil, "7", "10"), []node.Change{group}, false},
		{"bad version", 1, nil, tuple("1", "7", "0"), []node.Change{group}, false},
		{"unmapped table", 2, nil, tuple("1"), nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ignored, err := d.row(tc.rel, tc.old, tc.new)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) || ignored != tc.wantIgnore {
				t.Errorf("row = %+v, ignored %v; want %+v, %v", got, ignored, tc.want, tc.wantIgnore)
			}
		})
	}
	if _, _, err := d.row(9, nil, tuple("1")); err == nil {
		t.Error("a change of an unknown relation must fail the stream")
	}
}

func TestMarker(t *testing.T) {
	s, q, err := parseMarker(markerContent(0xfeed, 42))
	if err != nil || s != 0xfeed || q != 42 {
		t.Errorf("parseMarker = %x, %d, %v", s, q, err)
	}
	if _, _, err := parseMarker("42"); err == nil {
		t.Error("a marker without a session must not parse")
	}
}
