//go:build !unix

package logging

import "os"

// flock does nothing where flock is not available: there, writes and rotations
// of several processes are not ordered, and only one process should use a log
// file.
func flock(*os.File, bool) (func(), error) {
	return func() {}, nil
}

// tryLock always succeeds where flock is not available.
func tryLock(*os.File) (bool, error) {
	return true, nil
}
