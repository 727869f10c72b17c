// Package buildinfo says which build is running: the module version and the
// VCS revision Go stamps into every binary (runtime/debug.ReadBuildInfo),
// for `gateway --version`, `satellite --version` and the gateway_build_info
// metric.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Info is what a binary knows of its own build.
type Info struct {
	// Version is the main module's version: a tag (v1.2.0), a
	// pseudo-version for an untagged commit, or "(devel)".
	Version string
	// Revision is the VCS commit, "" when the build was not stamped
	// (go run, go test, -buildvcs=false).
	Revision string
	// Time is the commit's time (RFC 3339), "" when not stamped.
	Time string
	// Modified says the work tree had changes at build time.
	Modified bool
	// GoVersion is the toolchain that built the binary.
	GoVersion string
}

// Read returns the running binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "(devel)", GoVersion: runtime.Version()}
	}
	return From(bi)
}

// From reads the build information bi.
func From(bi *debug.BuildInfo) Info {
	i := Info{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	if i.Version == "" {
		i.Version = "(devel)"
	}
	if i.GoVersion == "" {
		i.GoVersion = runtime.Version()
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
}

// String is the version line: "v1.2.0 (revision 0123abcd, 2026-11-29T00:00:00Z, modified; go1.26.8)".
func (i Info) String() string {
	var b strings.Builder
	b.WriteString(i.Version)
	b.WriteString(" (")
	if i.Revision != "" {
		b.WriteString("revision ")
		b.WriteString(i.Revision)
		if i.Time != "" {
			b.WriteString(", ")
			b.WriteString(i.Time)
		}
		if i.Modified {
			b.WriteString(", modified")
		}
		b.WriteString("; ")
	}
	b.WriteString(i.GoVersion)
	b.WriteString(")")
	return b.String()
}
