package main

import (
	"strings"
	"testing"
)

// TestCommandTable: the table is sorted by name (the usage message lists it
// in its order), names are unique, each usage starts with its name and each
// command runs something.
func TestCommandTable(t *testing.T) {
	for i, c := range commands {
		if i > 0 && commands[i-1].name >= c.name {
			t.Errorf("command %q after %q: want the table sorted by name, each once", c.name, commands[i-1].name)
		}
		if !strings.HasPrefix(c.usage, c.name+" ") {
			t.Errorf("command %q: usage %q does not start with its name", c.name, c.usage)
		}
		if c.run == nil {
			t.Errorf("command %q: no run function", c.name)
		}
		if findCommand(c.name) != &commands[i] {
			t.Errorf("findCommand(%q) is not the table's entry", c.name)
		}
	}
	if c := findCommand("nosuch"); c != nil {
		t.Errorf("findCommand(\"nosuch\") = %q, want nil", c.name)
	}
}
