//go:build !unix

package service

// raiseNoFile: no open-file limit to read on this platform.
func raiseNoFile() (uint64, error) { return 0, nil }
