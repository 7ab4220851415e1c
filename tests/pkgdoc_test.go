package tests

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryPackageStatesItsJob keeps STYLE's rule true: each package has
// exactly one package comment, and it begins "Package NAME" (or "Command
// NAME" for a main package).
func TestEveryPackageStatesItsJob(t *testing.T) {
	dirs := map[string][]string{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != ".." {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			dirs[filepath.Dir(path)] = append(dirs[filepath.Dir(path)], path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir, files := range dirs {
		var docs []string
		var name string
		for _, f := range files {
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			name = af.Name.Name
			if af.Doc != nil {
				docs = append(docs, f)
				text := af.Doc.Text()
				want := "Package " + name
				if name == "main" {
					want = "Command "
				}
				if !strings.HasPrefix(text, want) {
					t.Errorf("%s: package comment starts %q, want %q", f, firstLine(text), want)
				}
			}
		}
		if len(docs) != 1 {
			t.Errorf("package %s in %s has %d package comments (%v), want exactly one", name, dir, len(docs), docs)
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
