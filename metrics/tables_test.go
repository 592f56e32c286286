package metrics

import "testing"

// TestSampleTablesMatchFamilies: every sample names a family with the right
// number of labels, and every family is sampled, so a family added without
// samples (or a sample with a typo) fails here rather than panicking at
// scrape time.
func TestSampleTablesMatchFamilies(t *testing.T) {
	labels := map[string]int{}
	for _, f := range families {
		if _, dup := labels[f.name]; dup {
			t.Errorf("family %s declared twice", f.name)
		}
		labels[f.name] = len(f.labels)
	}
	sampled := map[string]bool{}
	check := func(fam, label string, prefix int) {
		n, ok := labels[fam]
		if !ok {
			t.Errorf("sample of unknown family %s", fam)
			return
		}
		if want := prefix + len(label[:min(len(label), 1)]); n != want {
			t.Errorf("family %s has %d labels, its sample %q gives %d", fam, n, label, want)
		}
		sampled[fam] = true
	}
	for _, s := range groupSamples {
		check(s.family, s.label, 1)
	}
	for _, s := range nodeSamples {
		check(s.family, s.label, 0)
	}
	for _, f := range families {
		if !sampled[f.name] {
			t.Errorf("family %s has no sample", f.name)
		}
	}
}
