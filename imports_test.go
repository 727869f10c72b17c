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
