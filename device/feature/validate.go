package feature

import (
	"fmt"

	"github.com/wghooks/wghooks/uapi"
)

// Validators for extension key values: one grammar per kind of value, so
// every key of a kind accepts the same spellings.

// ValidateBool accepts true and false.
func ValidateBool(v string) error {
	if v != "true" && v != "false" {
		return fmt.Errorf("want true or false")
	}
	return nil
}

// ValidateTrue accepts only true: the key is an action.
func ValidateTrue(v string) error {
	if v != "true" {
		return fmt.Errorf("want true")
	}
	return nil
}

// ValidateHexKey accepts a key in hex, as UAPI writes keys.
func ValidateHexKey(v string) error {
	if _, err := uapi.ParseKey(v); err != nil {
		return fmt.Errorf("want a key in hex (64 characters)")
	}
	return nil
}

// ValidateOneOf accepts exactly one of words.
func ValidateOneOf(words ...string) func(string) error {
	return func(v string) error {
		for _, w := range words {
			if v == w {
				return nil
			}
		}
		return fmt.Errorf("want one of %q", words)
	}
}
