// Package loadertest is a conformance suite for nearcache loaders, in the
// manner of testing/slogtest.
//
// A loader's test supplies a constructor that returns the loader under test
// and a [Fixture] that writes to the source of truth behind it; [Run] then
// checks, each in its own subtest, that the loader returns values and
// versions as written, reports missing and deleted keys as not found, honours
// a cancelled context, round-trips awkward keys, is consistent under
// concurrent use and returns values the caller owns.
//
//	func TestConformance(t *testing.T) {
//		loadertest.Run(t, func(t *testing.T) (loadertest.Loader, loadertest.Fixture) {
//			db := openTestDB(t)
//			l, err := loader.NewSQL(loader.SQLConfig[[]byte]{DB: db, Query: q})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return l, sqlFixture{db}
//		})
//	}
package loadertest
