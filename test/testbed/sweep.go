package testbed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// tempDirPrefix starts the folders the test bed makes outside t.TempDir (the shared
// control plane's, the built binaries'); the creator's PID follows, as in netns
// names, so a later run can remove what a killed run left.
const tempDirPrefix = "polynet-"

// makeTempDir makes a folder named for kind and this process.
func makeTempDir(kind string) (string, error) {
	return os.MkdirTemp("", fmt.Sprintf("%s%s-%d-", tempDirPrefix, kind, os.Getpid()))
}

// SweepStale removes what an earlier test run that was killed before its cleanups
// could run left behind: pod network namespaces and the test bed's temporary
// folders whose creating process is gone. Processes it started died with it
// (Pdeathsig), and everything in its node namespace vanished with the namespace.
func SweepStale() {
	for _, name := range listOurNetNS() {
		if creatorGone(strings.TrimPrefix(name, netnsPrefix)) {
			_ = (&NetNS{Name: name, Path: filepath.Join(netnsDir, name)}).Delete()
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempDirPrefix+"*"))
	for _, dir := range dirs {
		// polynet-<kind>-<pid>-<random>
		parts := strings.SplitN(strings.TrimPrefix(filepath.Base(dir), tempDirPrefix), "-", 2)
		if len(parts) == 2 && creatorGone(parts[1]) {
			_ = os.RemoveAll(dir)
		}
	}
}

// creatorGone reads the PID at the start of "<pid>-<rest>" and reports whether that
// process has ended. A name that does not parse is left alone.
func creatorGone(pidAndRest string) bool {
	pidText, _, _ := strings.Cut(pidAndRest, "-")
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 {
		return false
	}
	err = syscall.Kill(pid, 0)
	return errors.Is(err, syscall.ESRCH)
}
