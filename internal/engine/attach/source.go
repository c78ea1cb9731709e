package attach

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/polynet-cni/polynet/internal/cniconf"
	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/podnet"
)

// fromNAD resolves a NAD's configuration: spec.config, with the NAD's name injected
// when it has none; else an on-disk conflist, then conf, in confDir whose
// name is the NAD's; else the request fails.
func fromNAD(ctx context.Context, in Input, namespace, name string) (Planned, error) {
	ref := namespace + "/" + name
	if in.NADs == nil {
		return Planned{}, &NetworkNotFoundError{Network: ref, Reason: "no Kubernetes client is configured (delegates-only mode)"}
	}
	nad, err := in.NADs.NAD(ctx, namespace, name)
	if err != nil {
		var nf *podnet.NotFoundError
		if errors.As(err, &nf) {
			return Planned{}, &NetworkNotFoundError{Network: ref, Reason: "no NetworkAttachmentDefinition " + ref}
		}
		return Planned{}, fmt.Errorf("network %q: reading its NetworkAttachmentDefinition: %w", ref, err)
	}
	var cfg []byte
	source := "NetworkAttachmentDefinition " + ref
	if strings.TrimSpace(nad.Config) != "" {
		cfg = []byte(nad.Config)
	} else {
		var path string
		cfg, path, err = in.confs().Find(in.Conf.ConfDir, name)
		if err != nil {
			return Planned{}, &ConfigError{Network: ref, Source: "confDir " + in.Conf.ConfDir, Err: err}
		}
		if cfg == nil {
			return Planned{}, &NetworkNotFoundError{Network: ref, Reason: fmt.Sprintf(
				"the NAD has no spec.config and no configuration named %q is in confDir %s (R-3.4.1)", name, in.Conf.ConfDir)}
		}
		source = path
	}
	if cfg, err = checked(cfg, name, in.Conf.CNIVersion); err != nil {
		return Planned{}, &ConfigError{Network: ref, Source: source, Err: err}
	}
	return Planned{Attachment: podnet.Attachment{Network: ref, Config: cfg}, NAD: nad}, nil
}

// checked injects the name and version a configuration lacks (R-3.4.2 injects
// the NAD's name, and upstream gives a delegate without a version the
// meta-plugin's own), and validates it.
func checked(cfg []byte, name, cniVersion string) ([]byte, error) {
	cfg, err := cniconf.WithDefaults(cfg, map[string]string{"name": name, "cniVersion": cniVersion})
	if err != nil {
		return nil, err
	}
	if _, err := config.DelegateIsList(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// byReference resolves clusterNetwork or a defaultNetworks entry, as upstream
// does: a plain name is a NAD in multusNamespace, else an on-disk configuration
// of that name in confDir; a path names a folder (its first configuration file)
// or a configuration file.
func byReference(ctx context.Context, in Input, ref string) (Planned, error) {
	if strings.Contains(ref, "/") {
		return loaded(in, ref, ref)
	}
	var nadErr error
	if in.NADs != nil {
		p, err := fromNAD(ctx, in, in.Conf.MultusNamespace, ref)
		if err == nil {
			return p, nil
		}
		nadErr = err
	}
	cfg, path, err := in.confs().Find(in.Conf.ConfDir, ref)
	if err != nil {
		return Planned{}, &ConfigError{Network: ref, Source: "confDir " + in.Conf.ConfDir, Err: err}
	}
	if cfg == nil {
		reason := fmt.Sprintf("no configuration named %q in confDir %s", ref, in.Conf.ConfDir)
		if nadErr != nil {
			reason = nadErr.Error() + "; and " + reason
		}
		return Planned{}, &NetworkNotFoundError{Network: ref, Reason: reason}
	}
	// The file found is loaded as libcni loads it: a conflist gets its
	// folder's plugins, which a NAD's on-disk configuration does not.
	return loaded(in, ref, path)
}

// loaded resolves the configuration at path, a file or a folder, for ref.
func loaded(in Input, ref, path string) (Planned, error) {
	cfg, file, err := in.confs().Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Planned{}, &NetworkNotFoundError{Network: ref, Reason: err.Error()}
	}
	if file == "" {
		file = path
	}
	if err != nil {
		return Planned{}, &ConfigError{Network: ref, Source: file, Err: err}
	}
	m, err := cniconf.Decode(cfg)
	if err != nil {
		return Planned{}, &ConfigError{Network: ref, Source: file, Err: err}
	}
	name := cniconf.String(m, "name")
	if cfg, err = checked(cfg, "", in.Conf.CNIVersion); err != nil {
		return Planned{}, &ConfigError{Network: ref, Source: file, Err: err}
	}
	if name == "" {
		return Planned{}, &ConfigError{Network: ref, Source: file, Err: errors.New("the configuration has no name")}
	}
	return Planned{Attachment: podnet.Attachment{Network: name, Config: cfg}}, nil
}

// confs is in.Confs, or when it is nil a source without configurations.
func (in Input) confs() ConfSource {
	if in.Confs == nil {
		return noConfs{}
	}
	return in.Confs
}

// noConfs is a ConfSource of an empty disk.
type noConfs struct{}

func (noConfs) Find(string, string) ([]byte, string, error) { return nil, "", nil }

func (noConfs) Load(path string) ([]byte, string, error) {
	return nil, "", fmt.Errorf("%s: no configuration files are read here: %w", path, fs.ErrNotExist)
}

func (noConfs) Plugins(string, string) ([]json.RawMessage, error) { return nil, nil }
