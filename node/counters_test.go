package node

import (
	"reflect"
	"testing"
)

// TestCountersReachTheirFields: every counter lands in exactly one
// GroupStats field of its own, so a counter added to the enum without a
// field (or two mapped to one) is caught.
func TestCountersReachTheirFields(t *testing.T) {
	var c counters
	for k := range numCounters {
		c[k].Store(1000 + uint64(k))
	}
	var s GroupStats
	c.snapshot(&s)
	seen := map[uint64]string{}
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		for i := range v.NumField() {
			f, name := v.Field(i), path+v.Type().Field(i).Name
			switch f.Kind() {
			case reflect.Struct:
				walk(f, name+".")
			case reflect.Uint64:
				if x := f.Uint(); x != 0 {
					if prev, dup := seen[x]; dup {
						t.Errorf("counter %d reaches both %s and %s", x-1000, prev, name)
					}
					seen[x] = name
				}
			}
		}
	}
	walk(reflect.ValueOf(s), "")
	for k := range numCounters {
		if groupFields[k] == nil {
			if k != cInnerLookups {
				t.Errorf("counter %d has no GroupStats field", k)
			}
			continue
		}
		if _, ok := seen[1000+uint64(k)]; !ok {
			t.Errorf("counter %d did not reach its field", k)
		}
	}
}
