//go:build !unix

package logging

// lockDir does nothing where flock is not available; concurrent rotations there
// rely on the due check alone.
func lockDir(string) (func(), error) {
	return func() {}, nil
}
