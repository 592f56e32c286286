package server

// Item is one row of the source table (id TEXT PRIMARY KEY, body TEXT,
// version INTEGER) as the "items" group caches it: the body and the version it
// was read at, so reads can report the version they saw.
type Item struct {
	Body    string `json:"body"`
	Version uint64 `json:"version"`
}

// itemCost is the cache cost of an item: what it holds, plus overhead.
func itemCost(key string, it Item) int64 { return int64(len(key) + len(it.Body) + 64) }
