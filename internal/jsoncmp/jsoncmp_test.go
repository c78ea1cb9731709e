package jsoncmp

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type doc struct {
	Conf json.RawMessage
	List []string
	Map  map[string]int
}

func TestEquivalent(t *testing.T) {
	tests := []struct {
		name string
		a, b doc
		want bool
	}{
		{"white space", doc{Conf: json.RawMessage(`{"a": 1}`)}, doc{Conf: json.RawMessage(`{"a":1}`)}, true},
		{"other value", doc{Conf: json.RawMessage(`{"a":1}`)}, doc{Conf: json.RawMessage(`{"a":2}`)}, false},
		{"invalid kept apart", doc{Conf: json.RawMessage(`{`)}, doc{Conf: json.RawMessage(`{}`)}, false},
		{"empty list is none", doc{List: []string{}}, doc{}, true},
		{"empty map is none", doc{Map: map[string]int{}}, doc{}, true},
		{"list differs", doc{List: []string{"x"}}, doc{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cmp.Equal(tt.a, tt.b, Equivalent); got != tt.want {
				t.Errorf("Equal = %v, want %v", got, tt.want)
			}
		})
	}
}
