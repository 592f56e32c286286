package local

import (
	"fmt"
	"testing"
)

func TestTags(t *testing.T) {
	c := newTestCache(t, Config{})
	captured := []TagVersion{{Tag: "user:1", Version: c.TagVersion("user:1")}}
	if got := c.BumpTag("user:1"); got != 1 {
		t.Fatalf("BumpTag = %d, want 1", got)
	}
	if got := c.TagVersion("user:1"); got != 1 {
		t.Fatalf("TagVersion = %d, want 1", got)
	}
	if got := c.Set("k", Entry[string]{Version: 1}, 1, 0, captured); got != Stale {
		t.Errorf("Set with a stale captured tag = %v, want Stale", got)
	}

	captured = []TagVersion{{Tag: "user:1", Version: 1}}
	if got := c.Set("tagged", Entry[string]{Version: 1}, 1, 0, captured); got != Stored {
		t.Fatalf("Set tagged = %v, want Stored", got)
	}
	captured[0].Version = 0 // Set keeps its own copy
	set(t, c, "untagged", "v", 1)
	for _, k := range []string{"tagged", "untagged"} {
		if _, ok := c.Get(k); !ok {
			t.Fatalf("Get(%s) missed before BumpTag", k)
		}
	}
	c.BumpTag("other") // moves the tag epoch, but not this tag
	if _, ok := c.Get("tagged"); !ok {
		t.Fatal("Get(tagged) missed after an unrelated BumpTag")
	}
	c.BumpTag("user:1")
	if _, ok := c.Get("tagged"); ok {
		t.Error("Get(tagged) hit after BumpTag of its tag")
	}
	if _, ok := c.Get("untagged"); !ok {
		t.Error("Get(untagged) missed after BumpTag")
	}
	if st := c.Stats(); st.Tags != 2 || st.StaleRejected != 1 {
		t.Errorf("Stats Tags = %d, StaleRejected = %d; want 2, 1", st.Tags, st.StaleRejected)
	}
}

// A late tagged Set (captured before BumpTag, landing after) is refused.
func TestLateTaggedSetRefused(t *testing.T) {
	c := newTestCache(t, Config{})
	late := prepareLate(c, "k", 1)
	c.BumpTag("t")
	late.land(TagVersion{Tag: "t", Version: 0})
	if _, ok := c.Get("k"); ok {
		t.Fatal("Get served an entry whose tag was bumped after capture")
	}
}

// Forgetting tag records (MaxFloors held) never lowers a tag's version, so
// neither a cached entry nor an in-flight fill that captured an old version
// becomes valid again.
func TestTagForgettingKeepsVersionsMonotonic(t *testing.T) {
	c := newTestCache(t, Config{MaxFloors: 4})
	old := []TagVersion{{Tag: "t", Version: c.TagVersion("t")}}
	if got := c.Set("k", Entry[string]{Version: 1}, 1, 0, old); got != Stored {
		t.Fatalf("Set = %v, want Stored", got)
	}
	c.Wait()
	c.BumpTag("t")
	c.BumpTag("t")
	for i := range 10 { // pushes "t" out
		c.BumpTag(fmt.Sprintf("x%d", i))
	}
	st := c.Stats()
	if st.Tags > 4 || st.TagsForgotten == 0 {
		t.Fatalf("Tags = %d, TagsForgotten = %d; want <= 4 and > 0", st.Tags, st.TagsForgotten)
	}
	if got := c.TagVersion("t"); got < 2 {
		t.Fatalf("TagVersion(t) = %d after forgetting, want >= 2", got)
	}
	if _, ok := c.Get("k"); ok {
		t.Error("entry with a forgotten-stale tag served")
	}
	if got := c.Set("k", Entry[string]{Version: 1}, 1, 0, old); got != Stale {
		t.Errorf("in-flight fill with old tag = %v, want Stale", got)
	}
	if v := c.BumpTag("t"); v <= 2 {
		t.Errorf("BumpTag(t) after forgetting = %d, want > 2", v)
	}
}
