package imagetest

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
)

// Member is one member of a tar file, its header and its content.
type Member struct {
	Header *tar.Header
	Body   []byte
}

// ReadTar reads every member of the tar file in r, in order.
func ReadTar(r io.Reader) ([]Member, error) {
	var out []Member
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h.Name, err)
		}
		out = append(out, Member{Header: h, Body: body})
	}
}
