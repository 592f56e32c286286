package metrics

import (
	"errors"
	"fmt"
	"math"
	"regexp"
)

// Config tunes a [Metrics]. The zero value is valid: every zero field means
// the default written in its comment.
type Config struct {
	// Namespace prefixes every metric name; "" = "nearcache". It must be a
	// legacy Prometheus name ([a-zA-Z_][a-zA-Z0-9_]*) so PromQL can use it
	// unquoted. The shipped dashboard assumes the default.
	Namespace string
	// LoadBuckets are the upper bounds, in seconds, of the load duration
	// histogram; nil or empty = DefaultLoadBuckets (0.5 ms to 10 s).
	LoadBuckets []float64
	// PropagationBuckets are the upper bounds, in seconds, of the
	// propagation delay histogram; nil or empty = DefaultPropagationBuckets
	// (0.25 ms to 10 s).
	PropagationBuckets []float64
}

// DefaultNamespace is the metric name prefix used when Config.Namespace is "".
const DefaultNamespace = "nearcache"

// DefaultLoadBuckets returns the load duration buckets used when
// Config.LoadBuckets is empty: 0.5 ms to 10 s, a loader being a database
// or service call.
func DefaultLoadBuckets() []float64 {
	return []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
}

// DefaultPropagationBuckets returns the propagation delay buckets used when
// Config.PropagationBuckets is empty: 0.25 ms to 10 s, finer at the low end
// where a healthy loopback or LAN cluster lands (direct fan-out is a few ms).
func DefaultPropagationBuckets() []float64 {
	return []float64{.00025, .0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10}
}

var namespaceRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// validate reports the first problem with cfg. Prometheus panics on
// unsorted buckets, so they are checked here.
func (cfg Config) validate() error {
	if cfg.Namespace != "" && !namespaceRE.MatchString(cfg.Namespace) {
		return fmt.Errorf("metrics: Namespace %q is not a valid metric name prefix", cfg.Namespace)
	}
	if err := validateBuckets(cfg.LoadBuckets); err != nil {
		return fmt.Errorf("metrics: LoadBuckets %w", err)
	}
	if err := validateBuckets(cfg.PropagationBuckets); err != nil {
		return fmt.Errorf("metrics: PropagationBuckets %w", err)
	}
	return nil
}

func validateBuckets(b []float64) error {
	for i, v := range b {
		if math.IsNaN(v) {
			return errors.New("must not contain NaN")
		}
		if i > 0 && v <= b[i-1] {
			return errors.New("must be strictly increasing")
		}
	}
	return nil
}

// withDefaults returns a copy of cfg with defaults filled in; the caller's
// slices are copied, never shared.
func (cfg Config) withDefaults() Config {
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if len(cfg.LoadBuckets) == 0 {
		cfg.LoadBuckets = DefaultLoadBuckets()
	} else {
		cfg.LoadBuckets = append([]float64(nil), cfg.LoadBuckets...)
	}
	if len(cfg.PropagationBuckets) == 0 {
		cfg.PropagationBuckets = DefaultPropagationBuckets()
	} else {
		cfg.PropagationBuckets = append([]float64(nil), cfg.PropagationBuckets...)
	}
	return cfg
}
