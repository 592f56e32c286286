package loader_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/nearcache/nearcache/loader"
)

func ExampleFunc() {
	users := map[string]string{"1": "ada"}
	l := loader.Func[string](func(ctx context.Context, key string) (string, uint64, error) {
		name, ok := users[key]
		if !ok {
			return "", 0, loader.ErrNotFound
		}
		return name, 0, nil // this source has no versions
	})

	name, version, err := l.Load(context.Background(), "1")
	fmt.Println(name, version, err)
	_, _, err = l.Load(context.Background(), "2")
	fmt.Println(loader.IsNotFound(err))
	// Output:
	// ada 0 <nil>
	// true
}

func ExampleNewSQL() {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		panic(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // each :memory: connection is its own database
	_, err = db.Exec(`CREATE TABLE users (id TEXT PRIMARY KEY, body BLOB, version INTEGER);
		INSERT INTO users VALUES ('1', 'ada', 3)`)
	if err != nil {
		panic(err)
	}

	l, err := loader.NewSQL(loader.SQLConfig[string]{
		DB:    db,
		Query: "SELECT body, version FROM users WHERE id = ?",
	})
	if err != nil {
		panic(err)
	}
	name, version, err := l.Load(context.Background(), "1")
	fmt.Println(name, version, err)
	_, _, err = l.Load(context.Background(), "2")
	fmt.Println(err)
	// Output:
	// ada 3 <nil>
	// loader: sql load "2": loader: not found: sql: no rows in result set
}

// scanJSONUser decodes a JSON body column into a user.
func scanJSONUser(row loader.Scanner) (user, uint64, error) {
	var (
		body    []byte
		version uint64
		u       user
	)
	if err := row.Scan(&body, &version); err != nil {
		return user{}, 0, err // sql.ErrNoRows passes through unchanged
	}
	if err := json.Unmarshal(body, &u); err != nil {
		return user{}, 0, fmt.Errorf("decode user: %w", err)
	}
	return u, version, nil
}

// A custom Scan decodes a JSON column into a struct.
func ExampleNewSQL_jsonColumn() {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		panic(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	_, err = db.Exec(`CREATE TABLE users (id TEXT PRIMARY KEY, body BLOB, version INTEGER);
		INSERT INTO users VALUES ('1', '{"name":"ada"}', 9)`)
	if err != nil {
		panic(err)
	}

	l, err := loader.NewSQL(loader.SQLConfig[user]{
		DB:    db,
		Query: "SELECT body, version FROM users WHERE id = ?",
		Scan:  scanJSONUser,
	})
	if err != nil {
		panic(err)
	}
	u, version, err := l.Load(context.Background(), "1")
	fmt.Printf("%+v %d %v\n", u, version, err)
	// Output:
	// {Name:ada} 9 <nil>
}
