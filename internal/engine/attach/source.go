package attach

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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
		cfg, path, err = onDiskByName(in.Conf.ConfDir, name)
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
	if !strings.Contains(ref, "/") {
		var nadErr error
		if in.NADs != nil {
			p, err := fromNAD(ctx, in, in.Conf.MultusNamespace, ref)
			if err == nil {
				return p, nil
			}
			nadErr = err
		}
		cfg, path, err := onDiskByName(in.Conf.ConfDir, ref)
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
		return fromBytes(in, ref, path, cfg)
	}
	path := ref
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		files, err := confFiles(path, []string{".conf", ".conflist", ".json"})
		if err != nil || len(files) == 0 {
			return Planned{}, &NetworkNotFoundError{Network: ref, Reason: fmt.Sprintf("no configuration file in folder %s (%v)", path, err)}
		}
		path = files[0]
	}
	cfg, err := os.ReadFile(path)
	if err != nil {
		return Planned{}, &NetworkNotFoundError{Network: ref, Reason: err.Error()}
	}
	return fromBytes(in, ref, path, cfg)
}

func fromBytes(in Input, ref, path string, cfg []byte) (Planned, error) {
	m, err := cniconf.Decode(cfg)
	if err != nil {
		return Planned{}, &ConfigError{Network: ref, Source: path, Err: err}
	}
	name := cniconf.String(m, "name")
	if strings.HasSuffix(path, ".conflist") {
		if cfg, err = withSubdirectoryPlugins(path, cfg); err != nil {
			return Planned{}, &ConfigError{Network: ref, Source: path, Err: err}
		}
	}
	if cfg, err = checked(cfg, "", in.Conf.CNIVersion); err != nil {
		return Planned{}, &ConfigError{Network: ref, Source: path, Err: err}
	}
	if name == "" {
		return Planned{}, &ConfigError{Network: ref, Source: path, Err: errors.New("the configuration has no name")}
	}
	return Planned{Attachment: podnet.Attachment{Network: name, Config: cfg}}, nil
}

// onDiskByName finds the configuration named name in dir: conflists first, then
// single confs (R-3.4.1 (2) and (3)), each group in file name order. It returns nil
// bytes when none matches; files that do not parse are skipped, as a runtime skips
// them in its own configuration folder.
func onDiskByName(dir, name string) ([]byte, string, error) {
	for _, exts := range [][]string{{".conflist"}, {".conf", ".json"}} {
		files, err := confFiles(dir, exts)
		if err != nil {
			return nil, "", err
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			m, err := cniconf.Decode(data)
			if err != nil || cniconf.String(m, "name") != name {
				continue
			}
			return data, filepath.Clean(f), nil
		}
	}
	return nil, "", nil
}

// confFiles lists the files of dir with one of the extensions, in name order;
// a missing dir has none. It is libcni.ConfFiles, which this package cannot
// call: libcni links pkg/invoke (exec), and the engine, which imports this
// package, must link neither (test/arch). TestLoadingMatchesLibcni holds the
// two to the same answers.
func confFiles(dir string, exts []string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		if !e.IsDir() && slices.Contains(exts, filepath.Ext(e.Name())) {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	return files, nil
}
