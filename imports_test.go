package gateway

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsPointInward keeps the arrows of the import graph one-way: the
// vocabulary (api) imports nothing of ours, and the services under internal/
// never import the HTTP layer (middleware, handlers), which is built on top
// of them. What the two share (Identity, the error type) lives in api.
func TestImportsPointInward(t *testing.T) {
	const module = "github.com/ovosgw/gateway/"
	forbidden := func(dir, imp string) bool {
		rel, ours := strings.CutPrefix(imp, module)
		if !ours || rel == dir {
			return false // not ours, or an external test of its own package
		}
		switch {
		case dir == "api" || strings.HasPrefix(dir, "api/"):
			return true
		case strings.HasPrefix(dir, "internal/"):
			return rel == "middleware" || rel == "handlers" || strings.HasPrefix(rel, "handlers/")
		}
		return false
	}
	checked := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		for _, spec := range f.Imports {
			imp, _ := strconv.Unquote(spec.Path.Value)
			if forbidden(dir, imp) {
				t.Errorf("%s imports %s: the arrow points outward", path, imp)
			}
		}
		checked++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked %d Go files; the walk missed the tree", checked)
	}
}

// TestMetricsImportsNoComponent: the components that keep counters (bus
// link, hub, bridge, bans, intent gate) offer their own collectors, so the
// metrics package imports none of them (a star of imports otherwise).
func TestMetricsImportsNoComponent(t *testing.T) {
	files, err := filepath.Glob("internal/metrics/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no files in internal/metrics: %v", err)
	}
	allowed := map[string]bool{"github.com/ovosgw/gateway/api": true, "github.com/ovosgw/gateway/internal/buildinfo": true}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue // tests drive real components
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, spec := range f.Imports {
			imp, _ := strconv.Unquote(spec.Path.Value)
			if strings.HasPrefix(imp, "github.com/ovosgw/gateway/") && !allowed[imp] {
				t.Errorf("%s imports %s", path, imp)
			}
		}
	}
}
