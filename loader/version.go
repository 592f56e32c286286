package loader

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// errNullVersion is returned when the version column is NULL. It is not
// mapped to version 0 on purpose: 0 means "the source has no versions" and
// would switch node to clock fencing for that key only, silently.
var errNullVersion = errors.New("loader: version column is NULL")

// versionDest is an sql.Scanner that decodes a version column into a
// uint64, refusing NULL, negative and non-integral values.
type versionDest struct{ v uint64 }

// maxExactFloat is 2^53: larger float64 values are not exact integers.
const maxExactFloat = 1 << 53

// Scan implements sql.Scanner.
func (d *versionDest) Scan(src any) error {
	switch s := src.(type) {
	case nil:
		return errNullVersion
	case int64:
		if s < 0 {
			return fmt.Errorf("loader: negative version %d", s)
		}
		d.v = uint64(s)
	case uint64: // some drivers return unsigned columns this way
		d.v = s
	case float64:
		if s < 0 || s != math.Trunc(s) || s > maxExactFloat {
			return fmt.Errorf("loader: version %v is not a non-negative integer", s)
		}
		d.v = uint64(s)
	case []byte:
		return d.parse(string(s))
	case string:
		return d.parse(s)
	case time.Time:
		ns := s.UnixNano()
		if ns < 0 {
			return fmt.Errorf("loader: version time %v is before 1970", s)
		}
		d.v = uint64(ns)
	default:
		return fmt.Errorf("loader: unsupported version column type %T", src)
	}
	return nil
}

func (d *versionDest) parse(s string) error {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("loader: version %q is not a non-negative integer", s)
	}
	d.v = v
	return nil
}
