package loader_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nearcache/nearcache/loader"
)

// TestSQLLoadManyOneQueryPerChunk: ManyQuery reads every key asked in one
// query per MaxBatch chunk, reports the rows found by index, and leaves
// missing keys unreported.
func TestSQLLoadManyOneQueryPerChunk(t *testing.T) {
	db := openKV(t)
	f := sqlFixture{db}
	ctx := context.Background()
	for i := range 25 {
		if err := f.Put(ctx, fmt.Sprintf("k%d", i), []byte(fmt.Sprintf("v%d", i)), uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	l, err := loader.NewSQL(loader.SQLConfig[string]{DB: db, Query: kvQuery,
		ManyQuery: "SELECT id, body, version FROM kv WHERE id IN ({keys})", MaxBatch: 10})
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"k3", "nope", "k24"}
	for i := range 20 {
		keys = append(keys, fmt.Sprintf("k%d", i))
	}
	got := map[int]string{}
	err = l.LoadMany(ctx, keys, func(i int, v string, ver uint64, err error) {
		if err != nil {
			t.Errorf("key %d: %v", i, err)
		}
		got[i] = fmt.Sprintf("%s@%d", v, ver)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[1]; ok {
		t.Error("a missing key was reported")
	}
	if got[0] != "v3@4" || got[2] != "v24@25" || got[3] != "v0@1" || len(got) != len(keys)-1 {
		t.Errorf("LoadMany reported %v", got)
	}
	if _, err := loader.NewSQL(loader.SQLConfig[string]{DB: db, Query: kvQuery, ManyQuery: "SELECT 1"}); err == nil {
		t.Error(`a ManyQuery without "{keys}" was accepted`)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.LoadMany(cctx, keys, func(int, string, uint64, error) {}); !errors.Is(err, context.Canceled) {
		t.Errorf("LoadMany with a cancelled ctx = %v", err)
	}
}

// TestFuncWithVersion: the version function answers LoadVersion.
func TestFuncWithVersion(t *testing.T) {
	l := loader.Func[string](func(ctx context.Context, key string) (string, uint64, error) {
		return "v", 7, nil
	}).WithVersion(func(ctx context.Context, key string) (uint64, error) {
		if key == "gone" {
			return 0, loader.ErrNotFound
		}
		return 7, nil
	})
	if v, err := l.LoadVersion(context.Background(), "k"); v != 7 || err != nil {
		t.Errorf("LoadVersion = %d, %v", v, err)
	}
	if _, err := l.LoadVersion(context.Background(), "gone"); !loader.IsNotFound(err) {
		t.Errorf("LoadVersion of a missing key = %v", err)
	}
	if v, ver, err := l.Load(context.Background(), "k"); v != "v" || ver != 7 || err != nil {
		t.Errorf("Load = %q, %d, %v", v, ver, err)
	}
}
