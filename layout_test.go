package gateway

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestReadmeLayoutListsEveryPackage keeps the README's Layout table in step
// with the tree: every folder holding a Go package has a row of its own,
// and every row names a folder that exists.
func TestReadmeLayoutListsEveryPackage(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Layout\n")
	if !ok {
		t.Fatal("README has no Layout section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[string]bool{}
	for line := range strings.SplitSeq(section, "\n") {
		// | `internal/hub/` | ... |: the folder is the first cell's code span.
		cell, _, ok := strings.Cut(strings.TrimPrefix(line, "| `"), "`")
		if !ok || !strings.HasPrefix(line, "| `") {
			continue
		}
		folder := strings.TrimSuffix(cell, "/")
		if rows[folder] {
			t.Errorf("README Layout lists %s twice", cell)
		}
		rows[folder] = true
		if fi, err := os.Stat(folder); err != nil || !fi.IsDir() {
			t.Errorf("README Layout lists %s, which is not a folder here", cell)
		}
	}

	var packages []string
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && path != "." && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			return fs.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") {
			dir := filepath.ToSlash(filepath.Dir(path))
			if !slices.Contains(packages, dir) {
				packages = append(packages, dir)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(packages) < 2 {
		t.Fatalf("found only the packages %q", packages)
	}
	for _, p := range packages {
		if !rows[p] {
			t.Errorf("README Layout has no row for the package in %s/", p)
		}
	}
}
