package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/nearcache/nearcache/metrics"
)

// versionJSON is `nearcache version --json`.
type versionJSON struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"` // "" = unknown
	Modified  bool   `json:"modified"`
	GoVersion string `json:"go_version"`
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
}

// versionCommand prints which nearcache this binary is: the figures
// nearcache_build_info exports (metrics.ReadBuildInfo), one line each.
func versionCommand(stdout, stderr io.Writer) (*flag.FlagSet, func(context.Context) int) {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: nearcache version [--json]\n\n"+
			"Prints the nearcache version, VCS revision (-dirty: built from a modified\n"+
			"work tree), Go version and platform of this binary, one line each; the same\n"+
			"figures as the nearcache_build_info metric.\n\nflags:\n")
		fs.PrintDefaults()
	}
	jsonOut := fs.Bool("json", false, "print one JSON object instead")
	return fs, func(context.Context) int {
		return printVersion(stdout, metrics.ReadBuildInfo(), *jsonOut)
	}
}

func printVersion(w io.Writer, b metrics.BuildInfo, asJSON bool) int {
	var err error
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		err = enc.Encode(versionJSON{Version: b.Version, Revision: b.Revision, Modified: b.Modified,
			GoVersion: b.GoVersion, GOOS: b.GOOS, GOARCH: b.GOARCH})
	} else {
		_, err = fmt.Fprintf(w, "version  %s\nrevision %s\ngo       %s\nplatform %s/%s\n",
			b.Version, b.RevisionLabel(), b.GoVersion, b.GOOS, b.GOARCH)
	}
	if err != nil {
		return exitFailure // stdout closed: nobody to tell
	}
	return exitOK
}
