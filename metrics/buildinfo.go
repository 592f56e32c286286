package metrics

import (
	"regexp"
	"runtime"
	"runtime/debug"
)

// ModulePath is nearcache's module path, looked up in the build information.
const ModulePath = "github.com/nearcache/nearcache"

// BuildInfo says which nearcache a binary runs: what nearcache_build_info
// exports and `nearcache version` prints.
type BuildInfo struct {
	// Version is nearcache's module version: the binary's main module version
	// when nearcache is the main module (since Go 1.24 a tag or a
	// pseudo-version, "+dirty" when built from a modified work tree;
	// "(devel)" when the go command could not tell), otherwise the version
	// of the nearcache dependency the binary was built with. "unknown"
	// without build information (a binary built without module support).
	Version string
	// Revision is the VCS commit: vcs.revision when nearcache is the main
	// module, otherwise the commit a pseudo-version names. "" = unknown.
	Revision string
	// Modified is vcs.modified: the work tree had uncommitted changes.
	Modified bool
	// GoVersion is the Go toolchain that built the binary (runtime.Version).
	GoVersion string
	// GOOS and GOARCH are the platform the binary runs on.
	GOOS, GOARCH string
}

// RevisionLabel is Revision as nearcache_build_info's revision label shows
// it: "unknown" when unknown, with "-dirty" appended when Modified.
func (b BuildInfo) RevisionLabel() string {
	r := b.Revision
	if r == "" {
		r = "unknown"
	}
	if b.Modified {
		r += "-dirty"
	}
	return r
}

// ReadBuildInfo returns this binary's BuildInfo, from
// runtime/debug.ReadBuildInfo.
func ReadBuildInfo() BuildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return buildInfoFrom(bi)
}

// pseudoRevRE matches the commit at the end of a pseudo-version
// (vX.Y.Z-yyyymmddhhmmss-abcdefabcdef, or vX.Y.Z-pre.0.yyyymmddhhmmss-...),
// before any +incompatible or +dirty.
var pseudoRevRE = regexp.MustCompile(`[.-]\d{14}-([0-9a-f]{12})(?:\+.*)?$`)

// buildInfoFrom is ReadBuildInfo for a given build information (nil = none).
func buildInfoFrom(bi *debug.BuildInfo) BuildInfo {
	out := BuildInfo{Version: "unknown", GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH}
	if bi == nil {
		return out
	}
	if bi.GoVersion != "" {
		out.GoVersion = bi.GoVersion
	}
	if bi.Main.Path == ModulePath || bi.Main.Path == "" {
		// The nearcache binary, or nearcache's own tests.
		if bi.Main.Version != "" {
			out.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				out.Revision = s.Value
			case "vcs.modified":
				out.Modified = s.Value == "true"
			}
		}
		return out
	}
	// A program that uses nearcache as a library: the vcs settings are the
	// program's, not nearcache's.
	for _, d := range bi.Deps {
		if d.Path != ModulePath {
			continue
		}
		out.Version = d.Version
		if r := d.Replace; r != nil {
			out.Version = r.Version
			if r.Version == "" { // replaced by a directory: no version to tell
				out.Version = "(devel)"
			}
		}
		if m := pseudoRevRE.FindStringSubmatch(out.Version); m != nil {
			out.Revision = m[1]
		}
		break
	}
	return out
}
