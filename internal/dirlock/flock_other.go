//go:build !unix

package dirlock

import "os"

// flock is not available here: the data dir is not locked.
func flock(*os.File) error { return nil }
