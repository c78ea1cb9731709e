package recording

import (
	"strings"
	"testing"
	"time"
)

// TestAwait: Await returns the records of the command once one is written, and
// an error naming the command and what was recorded when none comes in time.
func TestAwait(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, Record{Command: "DEL", Seq: 1, PID: 1}); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		_ = Write(dir, Record{Command: "ADD", Seq: 2, PID: 1})
	}()
	recs, err := Await(dir, "ADD", 10*time.Second)
	if err != nil || len(recs) != 1 || recs[0].Seq != 2 {
		t.Errorf("Await(ADD) = %+v, %v; want the one ADD record", recs, err)
	}
	start := time.Now()
	recs, err = Await(dir, "CHECK", 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "no CHECK record") || !strings.Contains(err.Error(), "[DEL ADD]") {
		t.Errorf("Await(CHECK) with none coming = %+v, %v; want an error naming CHECK and the records seen", recs, err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Errorf("Await gave up after %s, before its timeout", took)
	}
}
