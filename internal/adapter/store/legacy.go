package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/polynet-cni/polynet/internal/podnet"
)

// LegacyDelegate is one entry of upstream Multus's per-sandbox cache,
// <cniDir>/<containerID>: a JSON array of its delegates, the first being the
// cluster network. Reading it lets a node upgraded from upstream still tear down
// the pods upstream attached: their DEL comes to us. Only the fields DEL needs
// are read; upstream's exact configuration bytes are in Bytes.
type LegacyDelegate struct {
	Name                  string   `json:"Name"`
	IfnameRequest         string   `json:"ifnameRequest"`
	MacRequest            string   `json:"macRequest"`
	InfinibandGUIDRequest string   `json:"infinibandGUIDRequest"`
	IPRequest             []string `json:"ipRequest"`
	DeviceID              string   `json:"deviceID"`
	Bytes                 []byte   `json:"Bytes"`
}

// legacyPath is upstream's cache file of a sandbox.
func (s Store) legacyPath(containerID string) string {
	return filepath.Join(filepath.Dir(s.Dir), containerID)
}

// LoadLegacy reads upstream's cache of a sandbox and turns it into attachments as
// upstream's DEL would run them: the first gets the runtime's interface name,
// the others their requested name or net<position>; requested MAC, IPs, GUID and
// device go along as capability arguments, as upstream passed them. A missing
// file is an error satisfying errors.Is(err, os.ErrNotExist); a damaged one is a
// *CorruptError.
func (s Store) LoadLegacy(containerID, ifName string) ([]podnet.Attachment, error) {
	path := s.legacyPath(containerID)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var delegates []LegacyDelegate
	if err := json.Unmarshal(data, &delegates); err != nil {
		return nil, &CorruptError{Path: path, Reason: "upstream cache does not decode: " + err.Error()}
	}
	atts := make([]podnet.Attachment, 0, len(delegates))
	for i, d := range delegates {
		if len(d.Bytes) == 0 {
			return nil, &CorruptError{Path: path, Reason: fmt.Sprintf("upstream cache entry %d has no configuration", i)}
		}
		a := podnet.Attachment{Network: d.Name, Config: d.Bytes, Default: i == 0, IfName: d.IfnameRequest}
		switch {
		case i == 0:
			a.IfName = ifName
		case a.IfName == "":
			a.IfName = "net" + strconv.Itoa(i)
		}
		caps := map[string]any{"mac": d.MacRequest, "infinibandGUID": d.InfinibandGUIDRequest, "deviceID": d.DeviceID}
		if len(d.IPRequest) > 0 {
			caps["ips"] = d.IPRequest
		}
		for k, v := range caps {
			if s, ok := v.(string); ok && s == "" {
				continue
			}
			if a.CapabilityArgs == nil {
				a.CapabilityArgs = map[string]json.RawMessage{}
			}
			a.CapabilityArgs[k], _ = json.Marshal(v)
		}
		atts = append(atts, a)
	}
	return atts, nil
}

// RemoveLegacy deletes upstream's cache of a sandbox; a missing file is fine.
func (s Store) RemoveLegacy(containerID string) error {
	if err := os.Remove(s.legacyPath(containerID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
