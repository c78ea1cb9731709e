package testbed

import (
	"context"
	"errors"
	"testing"
)

// TestContextLastsTheTest: a test's context has no budget of its own. It ends with
// the test, and no earlier than a minute before the binary's -timeout.
func TestContextLastsTheTest(t *testing.T) {
	var ctx context.Context
	t.Run("inner", func(t *testing.T) {
		ctx = Context(t)
		if err := ctx.Err(); err != nil {
			t.Fatalf("context of a running test: %v", err)
		}
		got, hasDeadline := ctx.Deadline()
		want, binaryHasDeadline := t.Deadline()
		if hasDeadline != binaryHasDeadline {
			t.Fatalf("context has a deadline: %v; the test binary has one: %v", hasDeadline, binaryHasDeadline)
		}
		if hasDeadline && !got.Equal(want.Add(-deadlineMargin)) {
			t.Errorf("deadline %s, want %s (the binary's, less %s)", got, want.Add(-deadlineMargin), deadlineMargin)
		}
	})
	if err := ctx.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("context after its test ended: %v, want canceled", err)
	}
}
