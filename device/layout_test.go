package device

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestFeaturesSeeOnlyTheLeaf keeps the layout true: a feature package
// under device/ imports the leaf (device/feature) and nothing else of the
// device (neither the core nor another feature), and no file of the
// device's packages registers anything from an init function.
func TestFeaturesSeeOnlyTheLeaf(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	features := 0
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "feature" || e.Name() == "testdata" {
			continue
		}
		features++
		checkPackage(t, e.Name(), func(imp string) bool {
			return imp == "github.com/wghooks/wghooks/device" || strings.HasPrefix(imp, "github.com/wghooks/wghooks/device/") &&
				imp != "github.com/wghooks/wghooks/device/feature" && imp != "github.com/wghooks/wghooks/device/feature/featuretest"
		})
	}
	if features == 0 {
		t.Fatal("no feature packages found under device/")
	}
	// The leaf imports nothing of the device.
	checkPackage(t, "feature", func(imp string) bool {
		return imp == "github.com/wghooks/wghooks/device" || strings.HasPrefix(imp, "github.com/wghooks/wghooks/device/") && imp != "github.com/wghooks/wghooks/device/feature"
	})
	checkPackage(t, ".", func(string) bool { return false })
}

// checkPackage parses every Go file of dir (and its subdirectories) and
// fails for an import that forbidden rejects, and for an init
// function outside tests.
func checkPackage(t *testing.T, dir string, forbidden func(string) bool) {
	t.Helper()
	fset := token.NewFileSet()
	walk := func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != dir && dir == "." {
			return filepath.SkipDir // the core's own files only
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly|parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if forbidden(p) {
				t.Errorf("%s imports %s: a feature sees the device only through device/feature", path, p)
			}
		}
		if strings.HasSuffix(path, "_test.go") {
			return nil
		}
		full, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range full.Decls {
			if fd, ok := decl.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Name.Name == "init" {
				t.Errorf("%s: func init: features and the core declare what they add, they do not register it", path)
			}
		}
		return nil
	}
	if err := filepath.WalkDir(dir, walk); err != nil {
		t.Fatal(err)
	}
}
