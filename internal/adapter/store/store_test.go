package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/podnet"
)

func sample(id string) *podnet.Record {
	return &podnet.Record{
		ContainerID: id,
		NetNS:       "/var/run/netns/x",
		Pod:         podnet.PodRef{Namespace: "ns1", Name: "pod-1", UID: "u-1"},
		CNIVersion:  "1.0.0",
		Created:     time.Date(2026, 11, 30, 1, 2, 3, 0, time.UTC),
		Attachments: []podnet.Attachment{
			{Network: "cbr0", IfName: "eth0", Default: true, Config: []byte(`{"cniVersion":"1.0.0","name":"cbr0","plugins":[{"type":"bridge"}]}`)},
			{
				Network: "ns1/macvlan", IfName: "net1",
				Config:         []byte(`{"cniVersion":"0.4.0", "name":"macvlan","type":"macvlan"}`),
				CapabilityArgs: map[string]json.RawMessage{"bandwidth": json.RawMessage(`{"ingressRate":1000000000,"ingressBurst":2000000000}`)},
				CNIArgs:        [][2]string{{"K8S_POD_NAME", "pod-1"}},
			},
		},
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	s := New(t.TempDir())
	want := sample("c1")
	if err := s.Save(want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load("c1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
	// The exact config bytes and capability numbers survive, byte for byte.
	if string(got.Attachments[1].Config) != `{"cniVersion":"0.4.0", "name":"macvlan","type":"macvlan"}` {
		t.Errorf("config bytes changed: %s", got.Attachments[1].Config)
	}
	if string(got.Attachments[1].CapabilityArgs["bandwidth"]) != `{"ingressRate":1000000000,"ingressBurst":2000000000}` {
		t.Errorf("capability args changed: %s", got.Attachments[1].CapabilityArgs["bandwidth"])
	}
	info, err := os.Stat(s.Path("c1"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("record mode %v, want 0600", info.Mode().Perm())
	}
	ids, err := s.List()
	if err != nil || len(ids) != 1 || ids[0] != "c1" {
		t.Errorf("List() = %v, %v; want [c1] (no temp files)", ids, err)
	}
}

// TestLoadAcceptsLaterFields: a record a later version wrote, with a field
// this one does not know inside its checksum, is read (the field ignored), so
// going back a version leaves no record unreadable; the same field added
// without a checksum over it is refused.
func TestLoadAcceptsLaterFields(t *testing.T) {
	s := New(t.TempDir())
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	r := sample("c1")
	r.Version = FormatVersion
	data, err := encode(r)
	if err != nil {
		t.Fatal(err)
	}
	// As a later version writes it: the new field inside, hashed with an
	// empty checksum, the checksum last.
	i := bytes.LastIndex(data, []byte(`,"checksum":"`))
	later := append(bytes.Clone(data[:i]), []byte(`,"later":{"x":1},"checksum":""}`)...)
	sum := sha256.Sum256(later)
	later = append(bytes.Clone(later[:len(later)-2]), []byte(hex.EncodeToString(sum[:])+`"}`)...)
	if err := os.WriteFile(s.Path("c1"), later, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load("c1")
	if err != nil {
		t.Fatalf("Load of a later version's record: %v", err)
	}
	if got.ContainerID != "c1" || len(got.Attachments) != len(r.Attachments) {
		t.Errorf("read %+v", got)
	}
	// Indented by hand: the known fields still verify.
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, data, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Path("c1"), pretty.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load("c1"); err != nil {
		t.Errorf("Load of an indented record: %v", err)
	}
}

func TestLoadRejectsDamagedRecords(t *testing.T) {
	s := New(t.TempDir())
	if err := s.Save(sample("c1")); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(s.Path("c1"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		data   []byte
		reason string
	}{
		{"truncated after a reboot (upstream #948)", good[:len(good)/2], "does not decode"},
		{"empty file (upstream #1087)", nil, "does not decode"},
		{"altered byte", []byte(strings.Replace(string(good), `"net1"`, `"net9"`, 1)), "checksum mismatch"},
		{"trailing garbage", append(append([]byte{}, good...), []byte(" {}")...), "trailing data"},
		{"unknown field", []byte(strings.Replace(string(good), `"version":1`, `"version":1,"extra":2`, 1)), "does not decode"},
	}
	// Well-formed, correctly checksummed records that still cannot be torn
	// down from: the checksum is made over the damaged content.
	checksummed := func(change func(r *podnet.Record)) []byte {
		r := sample("c1")
		r.Version = FormatVersion
		change(r)
		data, err := encode(r)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	tests = append(tests, []struct {
		name   string
		data   []byte
		reason string
	}{
		{"another format version", checksummed(func(r *podnet.Record) { r.Version = FormatVersion + 1 }), "format version"},
		{"no container ID", checksummed(func(r *podnet.Record) { r.ContainerID = "" }), "no container ID"},
		{"attachment without interface name", checksummed(func(r *podnet.Record) { r.Attachments[1].IfName = "" }), "attachment 1 has no interface name or config"},
		{"attachment without config", checksummed(func(r *podnet.Record) { r.Attachments[0].Config = nil }), "attachment 0 has no interface name or config"},
	}...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(s.Path("c1"), tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := s.Load("c1")
			var ce *CorruptError
			if !errors.As(err, &ce) || !strings.Contains(ce.Reason, tt.reason) || ce.Path != s.Path("c1") {
				t.Fatalf("Load() error %v, want a CorruptError about %q naming the file", err, tt.reason)
			}
			if !strings.Contains(err.Error(), s.Path("c1")) {
				t.Errorf("message %q does not name the file", err)
			}
			if code := ce.CNICode(); code != cnicode.RecordCorrupt {
				t.Errorf("CNICode() = %d, want %d (RecordCorrupt)", code, cnicode.RecordCorrupt)
			}
			// Kept for inspection, byte for byte, and still listed, so GC
			// and an operator see it; Remove deletes it.
			if got, err := os.ReadFile(s.Path("c1")); err != nil || string(got) != string(tt.data) {
				t.Errorf("after Load the file is %q (%v), want it unchanged", got, err)
			}
			if ids, err := s.List(); err != nil || !slices.Equal(ids, []string{"c1"}) {
				t.Errorf("List() = %v, %v; want [c1]", ids, err)
			}
		})
	}
	if err := s.Remove("c1"); err != nil {
		t.Fatalf("Remove of a corrupt record: %v", err)
	}
	if _, err := os.Stat(s.Path("c1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Remove: %v, want no file", err)
	}
}

func TestLoadRejectsRecordOfAnotherContainer(t *testing.T) {
	s := New(t.TempDir())
	if err := s.Save(sample("c1")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(s.Path("c1"), s.Path("c2")); err != nil {
		t.Fatal(err)
	}
	var ce *CorruptError
	if _, err := s.Load("c2"); !errors.As(err, &ce) {
		t.Fatalf("got %v, want CorruptError", err)
	}
	if ce.Path != s.Path("c2") || !strings.Contains(ce.Reason, "c1") {
		t.Errorf("CorruptError{Path: %q, Reason: %q}: want the file read and the container it names", ce.Path, ce.Reason)
	}
}

func TestMissingRecordAndRemove(t *testing.T) {
	s := New(t.TempDir())
	if _, err := s.Load("nope"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing record: %v, want ErrNotExist", err)
	}
	if err := s.Remove("nope"); err != nil {
		t.Errorf("Remove of a missing record: %v", err)
	}
	if ids, err := s.List(); err != nil || ids != nil {
		t.Errorf("List of a missing folder: %v, %v", ids, err)
	}
	if err := s.Save(sample("c1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Path("c1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record still there after Remove: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	r := sample("c1")
	good, err := encode(r)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := Decode(data)
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a CorruptError", err)
			}
			return
		}
		if rec.ContainerID == "" {
			t.Fatal("accepted a record without a container ID")
		}
		for _, a := range rec.Attachments {
			if a.IfName == "" || len(a.Config) == 0 {
				t.Fatal("accepted an attachment without ifname or config")
			}
		}
	})
}

// TestLoadLegacy reads upstream's cache of a sandbox as upstream's DEL would run
// it, and refuses a damaged one.
func TestLoadLegacy(t *testing.T) {
	cniDir := t.TempDir()
	s := New(cniDir)
	upstream := `[{"Name":"cbr0","Bytes":"eyJ0eXBlIjoiYnJpZGdlIn0=","IsFilterV4Gateway":false},
		{"Name":"ns/a","macRequest":"c2:00:00:00:00:01","ipRequest":["10.1.1.1/24"],"Bytes":"eyJ0eXBlIjoibWFjdmxhbiJ9"},
		{"Name":"ns/b","ifnameRequest":"data0","Bytes":"eyJ0eXBlIjoicHRwIn0="}]`
	if err := os.WriteFile(filepath.Join(cniDir, "c1"), []byte(upstream), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadLegacy("c1", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	want := []podnet.Attachment{
		{Network: "cbr0", IfName: "eth0", Default: true, Config: []byte(`{"type":"bridge"}`)},
		{Network: "ns/a", IfName: "net1", Config: []byte(`{"type":"macvlan"}`), CapabilityArgs: map[string]json.RawMessage{
			"mac": json.RawMessage(`"c2:00:00:00:00:01"`), "ips": json.RawMessage(`["10.1.1.1/24"]`)}},
		{Network: "ns/b", IfName: "data0", Config: []byte(`{"type":"ptp"}`)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if err := os.WriteFile(filepath.Join(cniDir, "c2"), []byte(`[{"Name":"x"`), 0o600); err != nil {
		t.Fatal(err)
	}
	var ce *CorruptError
	if _, err := s.LoadLegacy("c2", "eth0"); !errors.As(err, &ce) {
		t.Errorf("truncated upstream cache: %v, want CorruptError", err)
	}
	if _, err := s.LoadLegacy("c3", "eth0"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing upstream cache: %v", err)
	}
	if err := s.RemoveLegacy("c1"); err != nil {
		t.Fatal(err)
	}
}
