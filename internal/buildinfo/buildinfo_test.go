package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestFrom(t *testing.T) {
	for _, tc := range []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"stamped", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-11-29T00:00:00Z"}, {Key: "vcs.modified", Value: "false"},
		}}, "v1.2.0 (revision 0123abcd, 2026-11-29T00:00:00Z; go1.26.8)"},
		{"modified work tree", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261129000000-0123abcd+dirty"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"},
		}}, "v0.0.0-20261129000000-0123abcd+dirty (revision 0123abcd, modified; go1.26.8)"},
		{"not stamped", debug.BuildInfo{GoVersion: "go1.26.8"}, "(devel) (go1.26.8)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := From(&tc.bi).String(); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	if got := Read(); got.GoVersion != runtime.Version() || got.Version == "" {
		t.Fatalf("Read() = %+v", got)
	}
}
