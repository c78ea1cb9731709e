package nodeidentity

import "testing"

func TestNodeOf(t *testing.T) {
	for user, want := range map[string]string{
		"system:multus:node-a":           "node-a",
		"system:multus:node-a.example":   "node-a.example",
		"system:multus:":                 "",
		"system:multus:node-a:admin":     "",
		"system:multus:Node_A":           "",
		"system:node:node-a":             "",
		"system:multus":                  "",
		"system:multus:node-a/../node-b": "",
	} {
		got, ok := NodeOf(user)
		if got != want || ok != (want != "") {
			t.Errorf("NodeOf(%q) = %q, %v; want %q", user, got, ok, want)
		}
	}
	if UserName("node-a") != "system:multus:node-a" {
		t.Errorf("UserName: %s", UserName("node-a"))
	}
}
